#!/usr/bin/env bash
# test_slurm_across_hosts.sh: a real 2-node Slurm on namespace hosts (cluster/netns_slurm.sh) and
# the batch scripts of cluster/slurm with the real mnist_dist (CPU ranks):
#   train     sbatch -N 2 --ntasks-per-node=2 train.sbatch: COMPLETED 0:0, "world 4 rank(s) on
#             2 node(s), 2 per node" via srun --mpi=pmix; its model after 5 steps equals one
#             process's within the equivalence bound (compare_weights.py)
#   singleton srun -N 2 -n 2 --mpi=none mnist_dist: two one-process jobs, both refused by the launch
#             gate (exit 2, "srun --mpi=pmix"), nothing trained
#   preempt   preemptible.sbatch on 2 nodes; SIGUSR1 to the batch script once training runs: the
#             ranks checkpoint and exit 3, the job requeues itself, the second attempt resumes
#             across both hosts and COMPLETES
#   nodeloss  train.sbatch on 2 x 2 with a checkpoint every 5 steps; every process of node 2
#             (slurmd, slurmstepd, ranks) gets SIGKILL. SlurmdTimeout is 40 s here, so Slurm alone
#             would not end the job within 30 s: the ranks' watchdog (--timeout 10) must. Asserts
#             every mnist_dist process of node 1 ends within 30 s (time printed) with exit code 6,
#             the newest checkpoint is intact, and `--resume auto` continues it on node 1 alone
#             (2 ranks, "written by 4 rank(s)"), COMPLETED; node 2 comes back idle.
# Usage: tests/multinode/test_slurm_across_hosts.sh [train|singleton|preempt|nodeloss ...]  (default all)
#   (root; env MNIST_DIST, MNIST_PREPARE, MULTINODE_CACHE, KEEP=1)
# Exit 0 pass, 1 fail, 77 skip (not root, no namespaces, no Slurm).
set -euo pipefail
PROG=test_slurm_across_hosts.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SLURM_H="$REPO/cluster/netns_slurm.sh"
COMPARE="$REPO/tests/multinode/compare_weights.py"
phases=("$@")
((${#phases[@]})) || phases=(train singleton preempt nodeloss)

require_namespaces
for c in slurmctld slurmd munged sbatch; do
  command -v "$c" >/dev/null || skip "$c not installed (apt-get install slurm-wlm munge; launch/setup.sh does)"
done
[[ -x "$MNIST_DIST" ]] || fail "$MNIST_DIST is not built (set MNIST_DIST)"
make_work
DATA="$("$REPO/tests/multinode/make_data.sh" "${MULTINODE_CACHE:-$WORK/cache}/fashion-2000")"
export NETNS_SLURM_DIR="$WORK/slurm" NETNS_SLURM_NAME=mdts NETNS_SLURM_SUBNET=10.77.14
export NETNS_SLURM_SLURMD_TIMEOUT=40
export SLURM_CONF="$NETNS_SLURM_DIR/etc/slurm.conf"
slurm_started=0
slurm_down() {
  ((slurm_started)) || return 0
  if [[ "${1:-0}" != 0 || "${KEEP:-0}" == 1 ]]; then
    scontrol show job 2>/dev/null | grep -E 'JobId|JobState|Reason|Restarts|ExitCode' || true
    "$SLURM_H" logs 2>&1 | tail -n 120
  fi
  "$SLURM_H" down || echo "$PROG: warning: netns_slurm.sh down failed" >&2
}
EXTRA_CLEANUP=slurm_down
slurm_started=1
"$SLURM_H" up 2 || fail "netns_slurm.sh up 2 failed"
N1=mdts1 N2=mdts2
RUNS="$WORK/runs"
mkdir -p "$RUNS"
cd "$WORK"
export REPO MNIST_DIST DATA RUNS_DIR="$RUNS"

state() { scontrol show job "$1" 2>/dev/null | grep -oP 'JobState=\K\S+' || echo GONE; }
# wait_state JOB SECONDS STATE...: until the job is in one of the states; prints it.
wait_state() {
  local jid="$1" secs="$2" st i; shift 2
  for ((i = 0; i < secs * 5; i++)); do
    st="$(state "$jid")"
    for want in "$@"; do [[ "$st" == "$want" ]] && { echo "$st"; return 0; }; done
    sleep 0.2
  done
  echo "$st"
  return 1
}
exitcode() { scontrol show job "$1" | grep -oP ' ExitCode=\K\S+'; }
mnist_pids() {  # HOST: pids of mnist_dist processes in that host
  local p
  for p in $("$REPO/cluster/netns_cluster.sh" --name mdts --subnet 10.77.14 pids "$1" 2>/dev/null); do
    [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == mnist_dist ]] && echo "$p"
  done
  return 0
}
export NETNS_CLUSTER_DIR="$NETNS_SLURM_DIR/netns"

phase_train() {
  say "train: sbatch -N 2 --ntasks-per-node=2 train.sbatch, 5 steps"
  "$MNIST_DIST" --data "$DATA" --epochs 1 --max-steps 5 --batch-size 64 --seed 7 --device cpu --threads 1 \
    --save "$WORK/ref.h5" --run-dir "$WORK/run-ref" --quiet >/dev/null 2>&1 || fail "the one-process reference failed"
  local jid st
  jid="$(sbatch --parsable -N 2 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 \
    "$REPO/cluster/slurm/train.sbatch" --epochs 1 --max-steps 5 --batch-size 64 --seed 7)"
  st="$(wait_state "$jid" 180 COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL)" || true
  local out="$WORK/mnist-train-$jid.out"
  [[ "$st" == COMPLETED && "$(exitcode "$jid")" == 0:0 ]] || { cat "$out"; fail "train: job $jid ended $st $(exitcode "$jid")"; }
  grep -qF "world 4 rank(s) on 2 node(s), 2 per node" "$out" || { cat "$out"; fail "train: not 4 ranks on 2 nodes"; }
  grep -q '^Test accuracy:' "$out" || { cat "$out"; fail "train: no Test accuracy line"; }
  local cmp
  cmp="$(/usr/bin/python3 "$COMPARE" --steps 5 "$WORK/ref.h5" "$RUNS/$jid/model.h5")" ||
    { echo "$cmp"; fail "train: the 2-node model differs from one process beyond the bound"; }
  say "train: job $jid COMPLETED 0:0 on $(scontrol show job "$jid" | grep -oP ' NodeList=\K\S+'); vs one process: $(tail -n 1 <<<"$cmp")"
}

phase_singleton() {
  say "singleton: srun -N 2 -n 2 --mpi=none mnist_dist"
  local rc=0 log="$WORK/singleton.log"
  timeout 120 srun -N 2 -n 2 --mpi=none "$MNIST_DIST" --data "$DATA" --epochs 1 --max-steps 3 --device cpu \
    --run-dir "$WORK/run-singleton" >"$log" 2>&1 || rc=$?
  ((rc == 2)) || { cat "$log"; fail "singleton: srun exit $rc, expected 2"; }
  [[ "$(grep -c 'SLURM_STEP_NUM_TASKS=2 but this process is in an MPI world of 1 rank(s).*srun --mpi=pmix' "$log")" == 2 ]] ||
    { cat "$log"; fail "singleton: expected the refusal from both processes"; }
  ! grep -q 'mnist_dist: world' "$log" && [[ ! -e "$WORK/run-singleton" ]] || { cat "$log"; fail "singleton: training started"; }
  say "singleton: both processes refused (exit 2), nothing trained"
}

phase_preempt() {
  say "preempt: preemptible.sbatch on 2 nodes, SIGUSR1 once training runs"
  local jid st i
  jid="$(CHECKPOINT_EVERY=5 sbatch --parsable -N 2 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 \
    "$REPO/cluster/slurm/preemptible.sbatch" --epochs 2 --max-steps 40 --batch-size 64 --progress lines --log-every 5)"
  local log="$RUNS/$jid/train.log"
  for ((i = 0; i < 900; i++)); do grep -q 'step' "$log" 2>/dev/null && grep -q '^Epoch 1/2.*step 10/' "$log" 2>/dev/null && break; sleep 0.2; done
  grep -qF "world 4 rank(s) on 2 node(s), 2 per node" "$log" 2>/dev/null || { cat "$log" "$WORK"/mnist-preemptible-"$jid".out; fail "preempt: not 4 ranks on 2 nodes"; }
  scancel --signal=USR1 --batch "$jid"
  # The first attempt ends with exit 3 and requeues the job (held ~2 min by Slurm: release it).
  for ((i = 0; i < 600; i++)); do
    [[ "$(scontrol show job "$jid" | grep -oP 'Restarts=\K[0-9]+')" -ge 1 && "$(state "$jid")" == PENDING ]] && break
    sleep 0.2
  done
  [[ "$(state "$jid")" == PENDING ]] || { cat "$WORK"/mnist-preemptible-"$jid".out; fail "preempt: job $jid was not requeued ($(state "$jid"))"; }
  # Release the ~2 min hold only once both nodes have finished cleaning up the first attempt
  # (a requeued job keeps its id: its new steps must not meet the old steps' leftovers).
  for ((i = 0; i < 150; i++)); do
    [[ "$(sinfo -h -N -o '%t' | sort -u | tr '\n' ' ')" == "idle " ]] && break
    sleep 0.2
  done
  # slurmd revoked the first attempt's credential when it killed it, and refuses any credential
  # of the same job created in that second or before ("Job credential revoked", seen in CI when
  # the release came 0.2 s after the requeue): let the clock pass it.
  sleep 2
  scontrol update jobid="$jid" starttime=now
  st="$(wait_state "$jid" 240 COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL)" || true
  [[ "$st" == COMPLETED ]] || { cat "$WORK"/mnist-preemptible-"$jid".out; fail "preempt: job $jid ended $st"; }
  grep -q 'stopped by a signal' "$log" || { cat "$log"; fail "preempt: no 'stopped by a signal' line"; }
  grep -q 'resuming from .*written by 4 rank(s)' "$log" || { cat "$log"; fail "preempt: the second attempt did not resume"; }
  [[ "$(grep -c 'world 4 rank(s) on 2 node(s)' "$log")" == 2 ]] || { cat "$log"; fail "preempt: both attempts must run on 2 nodes"; }
  grep -q '^Test accuracy:' "$log" || { cat "$log"; fail "preempt: no Test accuracy line"; }
  say "preempt: job $jid: $(grep -o 'stopped by a signal.*' "$log" | sed -E 's#/[^ ]*/##g' | head -1); $(grep -o 'resuming from.*' "$log" | sed 's|/.*/||' | head -1); COMPLETED"
}

phase_nodeloss() {
  say "nodeloss: train.sbatch on 2 x 2, SIGKILL of every process of $N2"
  local ck="$WORK/nodeloss-ck" jid i
  jid="$(sbatch --parsable --no-requeue -N 2 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 \
    "$REPO/cluster/slurm/train.sbatch" --epochs 30 --max-steps 400 --batch-size 64 --progress lines --log-every 5 \
    --checkpoint-dir "$ck" --checkpoint-every 5 --timeout 10)"
  local out="$WORK/mnist-train-$jid.out"
  for ((i = 0; i < 900; i++)); do (($(find "$ck" -name '*.h5' 2>/dev/null | wc -l) >= 2)) && break; sleep 0.2; done
  (($(find "$ck" -name '*.h5' | wc -l) >= 2)) || { cat "$out"; fail "nodeloss: no two checkpoints"; }
  [[ -n "$(mnist_pids "$N1")" ]] || fail "nodeloss: no mnist_dist process on $N1"
  local t0 t1 dt
  t0="$(date +%s.%N)"
  "$SLURM_H" kill-node "$N2"
  for ((i = 0; i < 600; i++)); do [[ -z "$(mnist_pids "$N1")" ]] && break; sleep 0.1; done
  t1="$(date +%s.%N)"
  dt="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')"
  [[ -z "$(mnist_pids "$N1")" ]] || { cat "$out"; fail "nodeloss: mnist_dist still runs on $N1 60 s after the loss"; }
  say "nodeloss: every rank on $N1 ended ${dt} s after the loss (job state then: $(state "$jid"))"
  awk -v d="$dt" 'BEGIN{exit !(d <= 30)}' || { cat "$out"; fail "nodeloss: the surviving ranks took ${dt} s (limit 30 s)"; }
  local st lost_state; st="$(wait_state "$jid" 120 NODE_FAIL FAILED COMPLETED CANCELLED)" || true
  lost_state="$st $(exitcode "$jid")"
  grep -q 'fatal: no progress for' "$out" || { cat "$out"; fail "nodeloss: the watchdog did not end the ranks"; }
  # srun words the ranks' end as "Exited with exit code 6" or, when MPI_Abort's kill wins the race,
  # "Killed"; the step's exit code, which train.sbatch reports, is the watchdog's either way.
  grep -q 'mnist_dist exited with code 6' "$out" ||
    { cat "$out"; fail "nodeloss: no rank exited with code 6 (the watchdog's), or train.sbatch did not report it"; }
  say "nodeloss: job $jid $st $(exitcode "$jid"); ranks: $(grep -oE 'tasks? [0-9,-]+: Exited with exit code [0-9]+' "$out" | sort -u | tr '\n' ';')"
  local newest side
  newest="$(find "$ck" -maxdepth 1 -name '*.h5' -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)"
  side="$newest.sha256"
  [[ -f "$side" ]] && grep -qF "$(sha256sum "$newest" | cut -d' ' -f1)" "$side" || fail "nodeloss: $newest does not match its sidecar"
  # Resume on the node that is left, 2 ranks.
  for ((i = 0; i < 300; i++)); do [[ "$(sinfo -h -N -n "$N1" -o %t)" == idle ]] && break; sleep 0.2; done
  local jid2
  jid2="$(sbatch --parsable -N 1 -w "$N1" --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 \
    "$REPO/cluster/slurm/train.sbatch" --epochs 30 --max-steps "$(( $(basename "$newest" .h5 | tr -dc 0-9 | sed 's/^0*//') + 5 ))" \
    --batch-size 64 --checkpoint-dir "$ck" --checkpoint-every 5 --resume auto)"
  st="$(wait_state "$jid2" 180 COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL)" || true
  local out2="$WORK/mnist-train-$jid2.out"
  [[ "$st" == COMPLETED ]] || { cat "$out2"; fail "nodeloss: the resume job $jid2 ended $st"; }
  grep -qF "world 2 rank(s) on 1 node(s), 2 per node" "$out2" || { cat "$out2"; fail "nodeloss: the resume is not 2 ranks on 1 node"; }
  grep -q "resuming from .*$(basename "$newest").*written by 4 rank(s)" "$out2" || { cat "$out2"; fail "nodeloss: did not resume the newest checkpoint"; }
  say "nodeloss: resumed on $N1 alone: $(grep -o 'resuming from.*' "$out2" | sed 's|/.*/||'); COMPLETED"
  "$SLURM_H" restart-node "$N2" || fail "nodeloss: $N2 did not come back"
  say "nodeloss: $N2 idle again after restart-node"
  echo "RESULT node_loss_slurm time_to_exit_s=$dt lost_job='$lost_state'"
}

for p in "${phases[@]}"; do
  case "$p" in
    train|singleton|preempt|nodeloss) "phase_$p" ;;
    *) fail "unknown phase '$p' (train, singleton, preempt, nodeloss)" ;;
  esac
done
echo "PASS: $PROG"
