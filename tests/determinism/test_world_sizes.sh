#!/usr/bin/env bash
# test_world_sizes.sh: --deterministic gives the same weights, bit for bit, on 1, 2 and 4 ranks
# (4 oversubscribed) x 1 and 2 threads per rank x both gradient exchanges, for the seed net (its
# BatchNorm statistics synchronised) and LeNet-5: one whole epoch of 1,400 real Fashion-MNIST
# images (tests/multinode/make_data.sh), 11 steps of 128 whose last holds 120 (a short chunk).
# Control: without --deterministic, 1 rank and 2 ranks differ (so the comparison can fail).
# Environment: MNIST_DIST, DATA_CACHE (set by ctest). Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
PROG=test_world_sizes.sh
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HASHES="$REPO/tests/determinism/weight_hashes.sh"
bin="${MNIST_DIST:-$REPO/build/mnist_dist}"
fail() { echo "FAIL: $PROG: $*" >&2; exit 1; }
/usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no h5py (launch/setup.sh installs it)"; exit 77; }
command -v mpirun >/dev/null || { echo "SKIP: no mpirun: the world sizes need Open MPI"; exit 77; }
data="$("$REPO/tests/multinode/make_data.sh" "${DATA_CACHE:-$REPO/build/tests/determinism/cache}/fashion-2000")"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

for model in seed lenet5; do
  table="$("$HASHES" --bin "$bin" --data "$data" --model "$model" --steps 0 --matrix --out "$work/$model" -- --deterministic)"
  echo "$model, --deterministic:"
  echo "$table"
  [[ $(awk '{print $2}' <<<"$table" | sort -u | wc -l) == 1 ]] || fail "$model: the configurations' weights differ"
  [[ $(wc -l <<<"$table") == 10 ]] || fail "$model: expected 10 configurations"
done

# Control: the default mode sums in floating point, in an order that depends on the world size.
control="$("$HASHES" --bin "$bin" --data "$data" --steps 0 --out "$work/control")"
echo "seed, default mode:"
echo "$control"
one=$(awk '/^1rank-1thread/ {print $2}' <<<"$control"); two=$(awk '/^2ranks-sharded/ {print $2}' <<<"$control")
[[ -n "$one" && -n "$two" ]] || fail "control: missing configurations"
[[ "$one" != "$two" ]] || fail "control: the default mode gave 1 and 2 ranks the same weights; the test cannot tell"
echo "PASS: $PROG"
