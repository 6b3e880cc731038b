#!/usr/bin/env bash
# test_resume_chain.sh: resume_chain.sh on 2,000 real Fashion-MNIST images (tests/multinode/
# make_data.sh): bad chains are refused with exit 2 before anything runs; on one world size a run
# killed mid-epoch, stopped by SIGTERM at an epoch boundary and resumed each time ends with the
# clean run's weights bit for bit (1 rank; 2 ranks when mpirun is there). With --deterministic,
# on a new world size at each restart (1 → 4 → 2 → 1 ranks; mpirun needed), killed mid-epoch, at
# an epoch boundary and after the last, partial batch of an epoch, the chain also ends on the
# clean run's weights; without --deterministic that chain ends elsewhere (the control).
# Environment: MNIST_DIST, MNIST_DIST_FAULTS, MNIST_PREPARE, DATA_CACHE (set by ctest).
# Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
PROG=test_resume_chain.sh
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHAIN="$REPO/tests/determinism/resume_chain.sh"
fail() { echo "FAIL: $PROG: $*" >&2; exit 1; }
say() { echo "$PROG: $*"; }
bins=(--bin "${MNIST_DIST:-$REPO/build/mnist_dist}" --faults-bin "${MNIST_DIST_FAULTS:-$REPO/build/tests/e2e/mnist_dist_faults}")
/usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no h5py (launch/setup.sh installs it)"; exit 77; }
data="$("$REPO/tests/multinode/make_data.sh" "${DATA_CACHE:-$REPO/build/tests/determinism/cache}/fashion-2000")"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

for spec in 2@kill:9,2@crash:12,1 2@kill:9 1,2 2@kill:9:2,1 0,1 ''; do
  set +e; out="$("$CHAIN" "${bins[@]}" --data "$data" --chain "$spec" --out "$work/bad" 2>&1)"; rc=$?; set -e
  [[ "$rc" == 2 ]] || fail "chain '$spec' must be refused with exit 2 (got $rc): $out"
  [[ ! -e "$work/bad" ]] || fail "chain '$spec' was refused but left $work/bad"
done
say "bad chains refused with exit 2, nothing run"

# 2,000 images: 1,400 to train, 22 steps of 64 per epoch (the 22nd of 56): 44 steps in 2 epochs.
"$CHAIN" "${bins[@]}" --data "$data" --chain 1@kill:9,1@term:22,1 --out "$work/one" ||
  fail "1 rank: killed after step 9, stopped after step 22, resumed: not the clean run's weights"
if command -v mpirun >/dev/null; then
  "$CHAIN" "${bins[@]}" --data "$data" --chain 2@kill:9:1,2@term:22,2 --out "$work/two" ||
    fail "2 ranks: rank 1 killed after step 9, stopped after step 22, resumed: not the clean run's weights"
  # 11 steps of 128 per epoch, the 11th of 120: killed after step 5, SIGTERM after step 11 (the
  # epoch's end), killed after step 22 (epoch 2's partial batch; resumed from step 20).
  elastic=(--chain 1@kill:5,4@term:11:3,2@kill:22:1,1)
  "$CHAIN" "${bins[@]}" --data "$data" "${elastic[@]}" --out "$work/elastic" -- --epochs 3 --batch-size 128 \
    --deterministic || fail "--deterministic, 1 -> 4 -> 2 -> 1 ranks: not the clean run's weights"
  set +e
  out="$("$CHAIN" "${bins[@]}" --data "$data" "${elastic[@]}" --out "$work/control" -- --epochs 3 --batch-size 128 2>&1)"
  rc=$?
  set -e
  [[ "$rc" == 1 ]] || fail "control: without --deterministic the elastic chain should end elsewhere (exit 1, got $rc): $out"
  say "control: without --deterministic the elastic chain differs, as it should"
else
  say "SKIP(2 ranks, elastic chain): no mpirun"
fi
echo "PASS: $PROG"
