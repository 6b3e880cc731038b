#!/usr/bin/env bash
# test_node_loss.sh: losing a node under mpirun. mnist_dist runs on 2 namespace hosts x 2 ranks
# with a checkpoint every 5 steps; once two checkpoints exist, every process of host 2 (its orted
# and both ranks) gets SIGKILL. Asserts: mpirun and every process of host 1 end within 30 s
# (measured and printed: "time to exit"), mpirun's exit code is not 0, the newest checkpoint is
# intact (its SHA-256 sidecar matches) and `--resume auto` continues from it on the remaining
# host with 2 ranks (the resume line names the step and the 4 ranks that wrote it); its next 5
# steps equal the same 5 steps resumed in one process within the equivalence bound.
# Usage: tests/multinode/test_node_loss.sh   (root; env MNIST_DIST, MNIST_PREPARE, MULTINODE_CACHE, KEEP=1)
# Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
PROG=test_node_loss.sh
export NETNS_CLUSTER_NAME=mdtk NETNS_CLUSTER_SUBNET=10.77.13
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LIMIT_S="${NODE_LOSS_LIMIT_S:-30}"

require_namespaces
require_mpirun
[[ -x "$MNIST_DIST" ]] || fail "$MNIST_DIST is not built (set MNIST_DIST)"
make_work
DATA="$("$REPO/tests/multinode/make_data.sh" "${MULTINODE_CACHE:-$WORK/cache}/fashion-2000")"
CKPT="$WORK/checkpoints"
TOTAL=100
common=(--data "$DATA" --epochs 30 --max-steps "$TOTAL" --batch-size 64 --seed 7 --device cpu --threads 1
        --progress lines --log-every 5 --checkpoint-dir "$CKPT" --checkpoint-every 5 --timeout 20)

cluster_up 2
mpi_pid=""
stop_mpirun() { [[ -z "$mpi_pid" ]] || kill -KILL "$mpi_pid" 2>/dev/null || true; }
EXTRA_CLEANUP=stop_mpirun

say "training on 2 hosts x 2 ranks, checkpoint every 5 steps"
bash -c 'source "$0"; mpirun_hosts "$@"' "$REPO/tests/multinode/lib.sh" 2 4 "$MNIST_DIST" "${common[@]}" \
  --run-dir "$WORK/run-1" >"$WORK/run1.log" 2>&1 &
mpi_pid=$!

ckpts() { find "$CKPT" -maxdepth 1 -name '*.h5' 2>/dev/null | wc -l; }
for _ in $(seq 1200); do
  (($(ckpts) >= 2)) && break
  kill -0 "$mpi_pid" 2>/dev/null || { cat "$WORK/run1.log"; fail "the run ended before two checkpoints were written"; }
  sleep 0.1
done
(($(ckpts) >= 2)) || { cat "$WORK/run1.log"; fail "no two checkpoints after 120 s"; }
grep -qF "world 4 rank(s) on 2 node(s), 2 per node" "$WORK/run1.log" || { cat "$WORK/run1.log"; fail "not 2 nodes x 2 ranks"; }
victims="$("$CLUSTER" pids "${NETNS_CLUSTER_NAME}2" | wc -l)"
say "killing every process of ${NETNS_CLUSTER_NAME}2 ($victims processes) at $(grep -c 'step' "$WORK/run1.log") progress lines"
t0="$(date +%s.%N)"
"$CLUSTER" kill "${NETNS_CLUSTER_NAME}2" KILL

# Wait for mpirun and every process of host 1 to end.
rc=""
t_mpirun=""
for _ in $(seq 900); do
  if [[ -z "$t_mpirun" ]] && ! kill -0 "$mpi_pid" 2>/dev/null; then
    t_mpirun="$(date +%s.%N)"
    rc=0; wait "$mpi_pid" || rc=$?
    mpi_pid=""
  fi
  if [[ -n "$t_mpirun" && -z "$("$CLUSTER" pids "${NETNS_CLUSTER_NAME}1")" ]]; then break; fi
  sleep 0.1
done
t_all="$(date +%s.%N)"
left="$("$CLUSTER" pids "${NETNS_CLUSTER_NAME}1" | tr '\n' ' ')"
[[ -n "$t_mpirun" ]] || { tail -n 30 "$WORK/run1.log"; fail "mpirun still runs 90 s after the node was lost"; }
[[ -z "$left" ]] || fail "processes of ${NETNS_CLUSTER_NAME}1 still run 90 s after the loss: $left"
dt_mpirun="$(awk -v a="$t0" -v b="$t_mpirun" 'BEGIN{printf "%.2f", b-a}')"
dt_all="$(awk -v a="$t0" -v b="$t_all" 'BEGIN{printf "%.2f", b-a}')"
tail -n 12 "$WORK/run1.log"
say "time to exit after the node loss: mpirun ${dt_mpirun} s, every rank of the surviving host ${dt_all} s; mpirun exit code $rc"
awk -v d="$dt_all" -v l="$LIMIT_S" 'BEGIN{exit !(d <= l)}' || fail "the surviving ranks took ${dt_all} s to end (limit ${LIMIT_S} s)"
((rc != 0)) || fail "mpirun exited 0 after losing a node"

# The newest checkpoint is intact.
newest="$(find "$CKPT" -maxdepth 1 -name '*.h5' -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)"
side="$(find "$CKPT" -maxdepth 1 -name "$(basename "$newest")*" ! -name '*.h5' | head -n 1)"
[[ -n "$side" ]] || { ls -la "$CKPT"; fail "the newest checkpoint $newest has no sidecar"; }
grep -qF "$(sha256sum "$newest" | cut -d' ' -f1)" "$side" || fail "the newest checkpoint $newest does not match its sidecar $side"
say "newest checkpoint $(basename "$newest") intact (SHA-256 = sidecar); files: $(ls "$CKPT" | tr '\n' ' ')"

# Resume on the remaining host, 2 ranks, for 5 steps; the same 5 steps from the same checkpoint in
# one process are the reference (compare_weights.py: the equivalence bound).
G=$((10#$(basename "$newest" .h5 | tr -dc '0-9')))
cp -r "$CKPT" "$WORK/checkpoints-copy"
echo "${NETNS_CLUSTER_NAME}1 slots=2" >"$WORK/hostfile-1"
args="$("$CLUSTER" mpirun-args)"
# shellcheck disable=SC2086
timeout 300 mpirun ${args/--hostfile * --mca plm_rsh_agent/--hostfile $WORK/hostfile-1 --mca plm_rsh_agent} \
  --oversubscribe --bind-to none -np 2 "$MNIST_DIST" "${common[@]}" --resume auto --max-steps $((G + 5)) \
  --run-dir "$WORK/run-2" --save "$WORK/resumed-2ranks.h5" >"$WORK/run2.log" 2>&1 ||
  { cat "$WORK/run2.log"; fail "resuming on the remaining host failed"; }
grep -qF "world 2 rank(s) on 1 node(s), 2 per node" "$WORK/run2.log" || { cat "$WORK/run2.log"; fail "the resumed run is not 2 ranks on 1 node"; }
line="$(grep -F 'resuming from' "$WORK/run2.log" || true)"
[[ "$line" == *"$(basename "$newest") (global step $G,"*"written by 4 rank(s)"* ]] || { cat "$WORK/run2.log"; fail "did not resume from the newest checkpoint $newest"; }
grep -q '^Test accuracy:' "$WORK/run2.log" || { cat "$WORK/run2.log"; fail "the resumed run did not finish"; }
grep -qF "stopped after --max-steps $((G + 5))" "$WORK/run2.log" || { cat "$WORK/run2.log"; fail "the resumed run did not reach step $((G + 5))"; }
"$MNIST_DIST" "${common[@]}" --checkpoint-dir "$WORK/checkpoints-copy" --resume auto --max-steps $((G + 5)) \
  --run-dir "$WORK/run-ref" --save "$WORK/resumed-1proc.h5" >"$WORK/ref.log" 2>&1 ||
  { cat "$WORK/ref.log"; fail "resuming in one process failed"; }
cmp="$(/usr/bin/python3 "$REPO/tests/multinode/compare_weights.py" --steps 5 "$WORK/resumed-1proc.h5" "$WORK/resumed-2ranks.h5")" ||
  { echo "$cmp"; fail "5 steps after resuming on 2 ranks differ from the same 5 steps in one process"; }
say "resumed on 1 host x 2 ranks from step $G: $line"
say "steps $((G + 1))-$((G + 5)) on 2 ranks vs one process: $(tail -n 1 <<<"$cmp")"
echo "RESULT node_loss_mpirun time_to_exit_s=$dt_all mpirun_s=$dt_mpirun exit_code=$rc resumed_from_step=$G"
echo "PASS: $PROG"
