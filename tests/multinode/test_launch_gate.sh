#!/usr/bin/env bash
# test_launch_gate.sh: the launch gate of the real mnist_dist (src/app/launch_gate.h) under real
# mpirun, MPMD jobs whose ranks were started differently, on one machine (no namespaces needed):
#   - --lr 0.001 : --lr 0.01           -> exit 2, one message naming lr, rank 0 and rank 1
#   - --batch-size 128 (1 rank) : 64 (2 ranks) -> exit 2, "batch-size: rank 0 128, ranks 1-2 64"
#   - two data directories with different data -> exit 2, naming "data"
#   - the refusal comes before any work: no start line, no run directory, no checkpoint
#   - controls: the same flags in MPMD form, and two directories holding the same bytes, train
#   - a job of singletons (SLURM_NTASKS=4 as srun sets it, a world of 1) -> exit 2 naming
#     `srun --mpi=pmix`; under the real Slurm this is in test_slurm_across_hosts.sh
# Usage: tests/multinode/test_launch_gate.sh   (env MNIST_DIST, MNIST_PREPARE, MULTINODE_CACHE, KEEP=1)
# Exit 0 pass, 1 fail, 77 skip (no mpirun).
set -euo pipefail
PROG=test_launch_gate.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_mpirun
[[ -x "$MNIST_DIST" ]] || fail "$MNIST_DIST is not built (set MNIST_DIST)"
make_work
cache="${MULTINODE_CACHE:-$WORK/cache}"
DATA="$("$REPO/tests/multinode/make_data.sh" "$cache/fashion-2000")"
OTHER="$("$REPO/tests/multinode/make_data.sh" "$cache/fashion-1500" 1500 400)"
cp -r "$DATA" "$WORK/copy-of-data"    # another path, the same bytes

common=(--epochs 1 --max-steps 3 --seed 7 --device cpu --threads 1 --progress lines --timeout 120)
mpi=(mpirun --oversubscribe --bind-to none)

# refused NAME EXPECTED_FIELD_TEXT MPIRUN_ARGS...: exit 2, one message containing the text, no work.
refused() {
  local name="$1" want="$2"; shift 2
  local log="$WORK/$name.log" rc=0
  timeout 120 "${mpi[@]}" "$@" >"$log" 2>&1 || rc=$?
  ((rc == 2)) || { cat "$log"; fail "$name: exit $rc, expected 2"; }
  [[ "$(grep -c 'mnist_dist: error: the ranks of this job were started differently' "$log")" == 1 ]] ||
    { cat "$log"; fail "$name: expected exactly one gate message"; }
  grep -qF "$want" "$log" || { cat "$log"; fail "$name: the message does not say '$want'"; }
  ! grep -q 'mnist_dist: world' "$log" || { cat "$log"; fail "$name: training started before the refusal"; }
  [[ ! -e "$WORK/run-$name" && ! -e "$WORK/ckpt-$name" ]] || fail "$name: the refused job wrote its run or checkpoint directory"
  say "$name: exit 2: $(grep -o 'started differently (.*)\. Every' "$log" | head -1)"
}
out() { echo --run-dir "$WORK/run-$1" --checkpoint-dir "$WORK/ckpt-$1"; }

# shellcheck disable=SC2046
refused mpmd-lr "lr: rank 0 0.001, rank 1 0.01" \
  -np 1 "$MNIST_DIST" --data "$DATA" "${common[@]}" $(out mpmd-lr) --lr 0.001 : \
  -np 1 "$MNIST_DIST" --data "$DATA" "${common[@]}" $(out mpmd-lr) --lr 0.01
# shellcheck disable=SC2046
refused mpmd-batch "batch-size: rank 0 128, ranks 1-2 64" \
  -np 1 "$MNIST_DIST" --data "$DATA" "${common[@]}" $(out mpmd-batch) --batch-size 128 : \
  -np 2 "$MNIST_DIST" --data "$DATA" "${common[@]}" $(out mpmd-batch) --batch-size 64
# shellcheck disable=SC2046
refused mpmd-data "data: rank 0 manifest sha256" \
  -np 1 "$MNIST_DIST" --data "$DATA" "${common[@]}" $(out mpmd-data) : \
  -np 1 "$MNIST_DIST" --data "$OTHER" "${common[@]}" $(out mpmd-data)
grep -qF "$OTHER/manifest.json" "$WORK/mpmd-data.log" || fail "mpmd-data: the message does not name rank 1's data directory"

# Controls: the gate lets an MPMD job of equal settings through, and equal data under two paths.
log="$WORK/control.log"
timeout 300 "${mpi[@]}" -np 1 "$MNIST_DIST" --data "$DATA" "${common[@]}" --run-dir "$WORK/run-control" : \
  -np 1 "$MNIST_DIST" --data "$WORK/copy-of-data" "${common[@]}" --run-dir "$WORK/run-control" >"$log" 2>&1 ||
  { cat "$log"; fail "control: equal settings (same data under two paths) were refused or failed"; }
grep -q '^Test accuracy:' "$log" || { cat "$log"; fail "control: no 'Test accuracy:' line"; }
say "control: equal settings in MPMD form and the same data under two paths train"

# A job of singletons: what `srun -n 4 mnist_dist` without PMI gives (each process alone).
log="$WORK/singleton.log"
rc=0
SLURM_NTASKS=4 SLURM_STEP_NUM_TASKS=4 SLURM_PROCID=1 timeout 60 "$MNIST_DIST" --data "$DATA" "${common[@]}" \
  --run-dir "$WORK/run-singleton" >"$log" 2>&1 || rc=$?
((rc == 2)) || { cat "$log"; fail "singleton: exit $rc, expected 2"; }
grep -qF "SLURM_STEP_NUM_TASKS=4 but this process is in an MPI world of 1 rank(s)" "$log" &&
  grep -qF 'srun --mpi=pmix' "$log" || { cat "$log"; fail "singleton: the message does not explain the fix"; }
[[ ! -e "$WORK/run-singleton" ]] || fail "singleton: the refused process wrote its run directory"
say "singleton: exit 2: $(head -c 160 "$log")…"
echo "PASS: $PROG"
