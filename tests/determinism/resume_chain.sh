#!/usr/bin/env bash
# resume_chain.sh: a scripted run of faults and restarts, and its final weights against a clean run.
# Each segment of --chain starts RANKS ranks with --resume auto on one checkpoint directory; a
# segment with a fault ends there (kill: SIGKILL of one rank right after global step STEP; term:
# SIGTERM, which checkpoints and exits 3), the next segment resumes from the newest checkpoint, and
# the last segment (no fault) trains to the end and saves the model. The clean run trains the same
# settings uninterrupted. Prints one line per segment and the SHA-256 of both models' weights
# (tensor_sha256.py); exit 0 when they are equal bit for bit, 1 when they differ (with the worst
# tensor's relative L2 distance, compare_weights.py), 2 on bad usage.
# Usage: tests/determinism/resume_chain.sh --data DIR --chain SPEC [--clean-ranks N] [--out DIR]
#          [--bin MNIST_DIST] [--faults-bin MNIST_DIST_FAULTS] [-- mnist_dist flags...]
#   SPEC: segments separated by commas, RANKS[@kill:STEP[:RANK]|@term:STEP[:RANK]] (RANK default 0);
#         e.g. 4@kill:9,2@term:20,1  (4 ranks killed after step 9, 2 ranks stopped after step 20, 1
#         rank to the end). The clean run uses --clean-ranks (default: the first segment's).
#   Defaults for the run (flags after -- come later and win): --epochs 2 --batch-size 64 --threads 1
#   --checkpoint-every 4 --device cpu.
# Environment: MPIRUN_ARGS (extra mpirun options, e.g. --oversubscribe is added when ranks > cores).
set -euo pipefail
PROG=resume_chain.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin="$root/build/mnist_dist"; faults="$root/build/tests/e2e/mnist_dist_faults"
data=""; chain=""; clean_ranks=""; out=""; extra=()
usage() { sed -n '10,18p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "$PROG: $1" >&2; exit "${2:-2}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --chain) chain="$2"; shift 2 ;;
    --clean-ranks) clean_ranks="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --faults-bin) faults="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument '$1' (--help)" ;;
  esac
done
[[ -n "$data" && -n "$chain" ]] || die "--data DIR and --chain SPEC are required (--help)"
[[ -x "$bin" ]] || die "$bin is not an executable (--bin)"
[[ -x "$faults" ]] || die "$faults is not an executable (--faults-bin; built as tests/e2e/mnist_dist_faults)"

# Parse the chain before anything runs.
IFS=, read -r -a segs <<<"$chain"
((${#segs[@]} >= 1)) || die "--chain is empty"
seg_re='^([1-9][0-9]*)(@(kill|term):([1-9][0-9]*)(:([0-9]+))?)?$'
for i in "${!segs[@]}"; do
  [[ "${segs[$i]}" =~ $seg_re ]] || die "segment '${segs[$i]}' is not RANKS[@kill:STEP[:RANK]|@term:STEP[:RANK]]"
  last=$((i == ${#segs[@]} - 1))
  if ((last)) && [[ -n "${BASH_REMATCH[2]}" ]]; then die "the last segment '${segs[$i]}' must have no fault (it trains to the end)"; fi
  if ((!last)) && [[ -z "${BASH_REMATCH[2]}" ]]; then die "segment '${segs[$i]}' is not the last, so it needs @kill:STEP or @term:STEP"; fi
  if [[ -n "${BASH_REMATCH[6]}" ]] && ((BASH_REMATCH[6] >= BASH_REMATCH[1])); then
    die "segment '${segs[$i]}': rank ${BASH_REMATCH[6]} does not exist among ${BASH_REMATCH[1]}"
  fi
done
[[ -n "$clean_ranks" ]] || clean_ranks="${segs[0]%%@*}"
[[ "$clean_ranks" =~ ^[1-9][0-9]*$ ]] || die "--clean-ranks must be a positive integer"

if [[ -z "$out" ]]; then out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"
[[ ! -e "$out/checkpoints" ]] || die "$out/checkpoints exists: give an empty --out"
common=(--data "$data" --epochs 2 --batch-size 64 --threads 1 --checkpoint-every 4 --device cpu
        --progress lines --log-every 1000 --timeout 120 "${extra[@]}")
cores=$(nproc)

launch() {  # RANKS EXE LOG [args...]: 0 or the exit code
  local ranks=$1 exe=$2 log=$3; shift 3
  local rc=0
  if ((ranks == 1)); then
    "$exe" "$@" >"$log" 2>&1 || rc=$?
  else
    local over=""; ((ranks <= cores)) || over="--oversubscribe"
    MNIST_DIST="$exe" RUN_LOCAL_BIND=none MPIRUN_ARGS="$over ${MPIRUN_ARGS:-}" \
      "$root/launch/run_local.sh" -n "$ranks" "$@" >"$log" 2>&1 || rc=$?
  fi
  echo "$rc"
}
newest_checkpoint() { { find "$out/checkpoints" -name 'ckpt-*.h5' 2>/dev/null || true; } | sort | tail -1; }

rc=$(launch "$clean_ranks" "$bin" "$out/clean.log" "${common[@]}" --save "$out/clean.h5" --run-dir "$out/run-clean")
[[ "$rc" == 0 ]] || { tail -20 "$out/clean.log" >&2; die "the clean run on $clean_ranks rank(s) failed (exit $rc)" 1; }
echo "clean run: $clean_ranks rank(s), to the end"

for i in "${!segs[@]}"; do
  [[ "${segs[$i]}" =~ $seg_re ]]
  ranks="${BASH_REMATCH[1]}" kind="${BASH_REMATCH[3]}" step="${BASH_REMATCH[4]}" rank="${BASH_REMATCH[6]:-0}"
  log="$out/segment-$((i + 1)).log"
  args=("${common[@]}" --checkpoint-dir "$out/checkpoints" --resume auto --run-dir "$out/run-$((i + 1))")
  before="$(newest_checkpoint)"
  from="${before:+from $(basename "$before")}"
  case "$kind" in
    kill)
      rc=$(MNIST_DIST_TEST_KILL="$rank:$step" launch "$ranks" "$faults" "$log" "${args[@]}")
      ((rc != 0)) || { tail -20 "$log" >&2; die "segment $((i + 1)): the run survived SIGKILL of rank $rank after step $step (did it reach that step?)" 1; } ;;
    term)
      rc=$(MNIST_DIST_TEST_SIGNAL="$rank:$step" launch "$ranks" "$faults" "$log" "${args[@]}")
      [[ "$rc" == 3 ]] || { tail -20 "$log" >&2; die "segment $((i + 1)): SIGTERM after step $step must checkpoint and exit 3 (got $rc)" 1; } ;;
    "")
      rc=$(launch "$ranks" "$bin" "$log" "${args[@]}" --save "$out/chain.h5")
      [[ "$rc" == 0 ]] || { tail -20 "$log" >&2; die "segment $((i + 1)): the last run failed (exit $rc)" 1; } ;;
  esac
  after="$(newest_checkpoint)"
  if [[ -n "$kind" ]]; then what="$kind of rank $rank after step $step, exit $rc; newest checkpoint $(basename "${after:-none}")"
  else what="to the end"; fi
  echo "segment $((i + 1)): $ranks rank(s) ${from:-from scratch}; $what"
done

hash_of() { "$root/tests/determinism/tensor_sha256.py" "$1" | cut -d' ' -f1; }
clean_hash="$(hash_of "$out/clean.h5")"; chain_hash="$(hash_of "$out/chain.h5")"
printf '%-8s %s\n' clean "$clean_hash" chain "$chain_hash"
if [[ "$clean_hash" == "$chain_hash" ]]; then
  echo "$PROG: EQUAL: the chain ${chain} ends with the clean run's weights, bit for bit"
  exit 0
fi
# How far apart, per tensor (the multinode tests' comparison; it exits 1 on any difference here).
dist="$({ "$root/tests/multinode/compare_weights.py" "$out/clean.h5" "$out/chain.h5" --tol 0 || true; } |
        tail -1 | sed -E 's/^(worst relative L2 [^;]*);.*/\1/')"
echo "$PROG: DIFFER: the chain ${chain} ends away from the clean run's weights ($dist)"
exit 1
