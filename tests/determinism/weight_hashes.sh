#!/usr/bin/env bash
# weight_hashes.sh: trains the same short run in several configurations (ranks, gradient
# exchange, threads) and prints the SHA-256 of each saved model's weights, one line per
# configuration (over the tensors: tensor_sha256.py, needs /usr/bin/python3 with h5py).
# Refactorings prove "the same numbers, bit for bit" by comparing these lines
# between two builds; deterministic training expects every line to show the same hash.
# Usage: tests/determinism/weight_hashes.sh --data DIR [--bin MNIST_DIST] [--steps N]
#          [--model seed|lenet5] [--out DIR] [--epochs N] [--all | --matrix] [-- TRAIN_FLAGS...]
#   --steps 0: whole epochs. --all adds 2 ranks x 2 threads and 8 ranks; --matrix runs instead
#   1, 2 and 4 ranks x 1 and 2 threads x both exchanges. TRAIN_FLAGS (e.g. --deterministic) go to
#   every run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin="$root/build/mnist_dist"; data=""; steps=20; model=seed; out=""; epochs=1; all=0; matrix=0; extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --all) all=1; shift ;;
    --matrix) matrix=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "weight_hashes.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
[[ -n "$data" ]] || { echo "weight_hashes.sh: --data DIR is required" >&2; exit 2; }
[[ -x "$bin" ]] || { echo "weight_hashes.sh: $bin is not an executable (--bin)" >&2; exit 2; }
if [[ -z "$out" ]]; then out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"
common=(--data "$data" --model "$model" --epochs "$epochs" --max-steps "$steps" --batch-size 128
        --device cpu --quiet --timeout 120 ${extra[@]+"${extra[@]}"})
run() {  # name ranks threads [extra flags...]
  local name=$1 ranks=$2 threads=$3; shift 3
  local file="$out/$name.h5"
  if [[ "$ranks" = 1 ]]; then
    "$bin" "${common[@]}" --threads "$threads" --run-dir "$out/run-$name" --save "$file" "$@" >/dev/null
  else
    MNIST_DIST="$bin" RUN_LOCAL_BIND=none "$root/launch/run_local.sh" -n "$ranks" "${common[@]}" \
      --threads "$threads" --run-dir "$out/run-$name" --save "$file" "$@" >/dev/null 2>&1
  fi
  printf '%-28s %s\n' "$name" "$("$root/tests/determinism/tensor_sha256.py" "$file" | cut -d' ' -f1)"
}
if [[ $matrix = 1 ]]; then
  for threads in 1 2; do
    run "1rank-${threads}threads" 1 "$threads"
    for ranks in 2 4; do
      for ex in sharded buckets; do run "${ranks}ranks-${threads}threads-$ex" "$ranks" "$threads" --grad-exchange "$ex"; done
    done
  done
  exit 0
fi
run 1rank-2threads 1 2
run 1rank-1thread 1 1
run 2ranks-sharded 2 1 --grad-exchange sharded
run 2ranks-buckets 2 1 --grad-exchange buckets
run 4ranks-auto 4 1
if [[ $all = 1 ]]; then
  run 2ranks-2threads 2 2
  run 8ranks 8 1
fi
