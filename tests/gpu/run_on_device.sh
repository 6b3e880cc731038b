#!/usr/bin/env bash
# run_on_device.sh — the one prepared check for a lent GPU machine (issue 18), made to tell the
# most in one device call: machine facts; build of only the targets it runs (ninja -k 0); the GPU
# tests with XML and NCCL/cuDNN logs; real Fashion-MNIST on the GPU (1 epoch at batch 64 to
# val accuracy > 0.80, --resume auto on an empty folder, the GPU checkpoint resumed on the CPU,
# TF32 off vs CPU for 100 steps, 2 ranks host-staged on one GPU vs 2 CPU ranks); the benchmark
# against the image's PyTorch (engine and PyTorch with data resident on the GPU, plus the
# trainer); compute-sanitizer memcheck/racecheck; CPU unit tests only if time is left.
#
# One global deadline (DEVICE_DEADLINE_S, 500 s of work inside a 560 s device call): each step's
# timeout is what is left (minus a reserve for packing), at most DEVICE_STEP_CAP_S; a step that
# would get under DEVICE_MIN_STEP_S is skipped. $OUT/summary.txt grows line by line and gets its
# verdict on every exit path (end, failure, TERM/INT/HUP, script error). What comes back (at most
# 8 files): summary.txt, facts.txt, bench_table.md, results.tar.gz (logs, gtest XML, run
# directories; checkpoints listed, not packed).
#
# Before (on a Debian 12 machine with network): bash tests/gpu/prepare_device_carry.sh
# Device call: run(command="bash tests/gpu/run_on_device.sh", carry=[".devdeps", ".devdata"],
#                  timeout_s=560)
# usage: run_on_device.sh [--dry-run] [--build-dir DIR] [--no-gpu-ok]
#   --dry-run      no GPU step, no configure/build: the binaries of --build-dir (default
#                  $BUILD_DIR) and a small data subset; what CI's ctest (label device_script) runs
#   --build-dir D  use the binaries already built in D (no configure/build)
#   --no-gpu-ok    without a GPU, skip the GPU steps instead of failing (the CPU-side proof)
# Knobs (environment): OUT (out/device), BUILD_DIR (build-device), DEVDEPS (.devdeps), DEVDATA
#   (.devdata), DEVICE_DEADLINE_S (500), DEVICE_STEP_CAP_S (240), DEVICE_CAP_SCALE (1: multiplies
#   each step's own cap, e.g. the build's 300 s), DEVICE_RESERVE_S (15),
#   DEVICE_MIN_STEP_S (5), DEVICE_PHASES ("facts build gpu-tests data train compare mpi bench
#   sanitizer cpu-tests"), JOBS (nproc), BENCH_BATCHES ("128 2048"), BENCH_EPOCHS (3),
#   MIN_VAL_ACC (0.80; dry 0.5), LOSS_TOL (1e-3), CMP_STEPS (steps of TF32 off vs CPU: 100; dry 30),
#   DRY_TRAIN / DRY_TEST (the dry run's subset: 3000 / 1000), CPU_TESTS_MIN_S (120: the time left that
#   the CPU unit tests need to start), CPU_TESTS_CAP_S (400: their cap, build included),
#   TORCH_PYTHON, DEVICE_WORK (a new temporary folder), DEVICE_SELFTEST (hang | fail: a step for
#   the tests of this script).
# shellcheck disable=SC2015  # "A && step B || true": the || true only keeps set -e from ending the run
set -euo pipefail

usage() { sed -n '/^# usage:/,/^# shellcheck/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
DRY=0 NO_GPU_OK=0 PREBUILT=""
while (($#)); do
  case $1 in
    --dry-run) DRY=1 NO_GPU_OK=1 ;;
    --build-dir) (($# >= 2)) || { usage >&2; exit 2; }; PREBUILT=$2; shift ;;
    --no-gpu-ok) NO_GPU_OK=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run_on_device.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/gpu
OUT=${OUT:-$ROOT/out/device}
BUILD_DIR=$(realpath -m "${PREBUILT:-${BUILD_DIR:-$ROOT/build-device}}")
DEVDEPS=${DEVDEPS:-$ROOT/.devdeps}
DEVDATA=${DEVDATA:-$ROOT/.devdata}
DEADLINE_S=${DEVICE_DEADLINE_S:-500}
STEP_CAP_S=${DEVICE_STEP_CAP_S:-240}
CAP_SCALE=${DEVICE_CAP_SCALE:-1}  # each step's own cap × this (the CPU-side proof on 2 cores: 10)
RESERVE_S=${DEVICE_RESERVE_S:-15}
MIN_STEP_S=${DEVICE_MIN_STEP_S:-5}
PHASES=" ${DEVICE_PHASES:-facts build gpu-tests data train compare mpi bench sanitizer cpu-tests} "
JOBS=${JOBS:-$(nproc)}
BENCH_BATCHES=${BENCH_BATCHES:-128 2048}
BENCH_EPOCHS=${BENCH_EPOCHS:-3}
LOSS_TOL=${LOSS_TOL:-1e-3}
if ((DRY)); then MIN_VAL_ACC=${MIN_VAL_ACC:-0.5} CMP_STEPS=${CMP_STEPS:-30}
else MIN_VAL_ACC=${MIN_VAL_ACC:-0.80} CMP_STEPS=${CMP_STEPS:-100}; fi
T0=$SECONDS
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/facts.txt" "$OUT/bench_table.md" "$OUT/results.tar.gz"  # a previous run's
WORK=${DEVICE_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/md-device.XXXXXX")}
LOGS=$WORK/logs RUNS=$WORK/runs XML=$WORK/xml
mkdir -p "$LOGS" "$RUNS" "$XML"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
export ROOT HERE BUILD_DIR DEVDATA WORK LOGS RUNS XML JOBS DRY
# shellcheck source=tests/gpu/device_lib.sh
source "$HERE/device_lib.sh"
# shellcheck source=tests/gpu/device_env.sh
source "$HERE/device_env.sh"
# shellcheck source=tests/gpu/device_steps.sh
source "$HERE/device_steps.sh"

# ---- every exit path: the verdict, the table, the pack ---------------------------------------------
ENDED_BY=completed
on_signal() {
  ENDED_BY="signal $1${CURRENT:+ during step $CURRENT}"
  if [[ -n $CHILD ]]; then
    kill -TERM "$CHILD" 2>/dev/null || true
    for _ in 1 2 3 4 5; do kill -0 "$CHILD" 2>/dev/null || break; sleep 1; done
  fi
  exit "$2"
}
finish() {
  local rc=$? vrc=0
  trap - EXIT TERM INT HUP
  set +e
  [[ $ENDED_BY == completed && $rc != 0 ]] && ENDED_BY="script error (exit $rc) near line ${ERR_LINE:-?}"
  [[ -n $CURRENT ]] && _record "$CURRENT" KILLED "by $ENDED_BY"
  say "ended: $ENDED_BY"
  verdict || vrc=1
  [[ -f $OUT/bench_table.md ]] && tee -a "$SUMMARY" <"$OUT/bench_table.md"  # the table last
  pack_results
  echo "run_on_device: summary in $SUMMARY, the rest in $OUT/results.tar.gz"
  if [[ $ENDED_BY != completed ]]; then exit $((rc == 0 ? 1 : rc)); fi
  exit "$vrc"
}
trap 'ERR_LINE=$LINENO' ERR
trap finish EXIT
trap 'on_signal TERM 143' TERM
trap 'on_signal INT 130' INT
trap 'on_signal HUP 129' HUP

phase() { [[ $PHASES == *" $1 "* ]]; }
export_mpi_defaults  # (env_on_device.sh sets the same again)
HAVE_GPU=0
if ((!DRY)) && nvidia-smi -L >/dev/null 2>&1; then HAVE_GPU=1; fi
# gpu_step NAME CAP CMD...: a step that needs the GPU.
gpu_step() {
  if ((HAVE_GPU)); then step "$@"; return; fi
  skip "$1" "no GPU$( ((DRY)) && echo ' (dry run)')"
  return 1
}
# gpu_bin_step NAME CAP BINARY CMD...: a step that needs the GPU and BINARY (relative to the build).
gpu_bin_step() {
  local name=$1 cap=$2 bin=$3
  shift 3
  if ((HAVE_GPU)); then have_bin "$bin" "$name" && step "$name" "$cap" "$@"; return; fi
  gpu_step "$name" "$cap" "$@"
}

say "mnist_dist device check: $( ((DRY)) && echo 'dry run' || echo full) on $(uname -n), $(date -u '+%Y-%m-%d %H:%M UTC')," \
  "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); deadline ${DEADLINE_S}s, step cap ${STEP_CAP_S}s"
say "build dir $BUILD_DIR; work $WORK; out $OUT"

# ---- 1. machine facts --------------------------------------------------------------------------
if phase facts; then
  step facts 30 bash "$HERE/device_facts.sh" || true
  cp "$LOGS/facts.log" "$OUT/facts.txt" 2>/dev/null || true
  GPU_NAME=$( { nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true; } | head -n 1)
  note "GPU: ${GPU_NAME:-none visible to nvidia-smi}"
fi
if ((!HAVE_GPU && !NO_GPU_OK)); then
  _record gpu-present FAILED "no GPU (nvidia-smi -L failed); GPU steps skipped (--no-gpu-ok to accept)"
fi
case ${DEVICE_SELFTEST:-} in
  hang) step selftest-hang 100000 sleep 100000 || true ;;
  fail) step selftest-fail 10 false || true ;;
  "") ;;
  *) _record selftest FAILED "unknown DEVICE_SELFTEST=$DEVICE_SELFTEST" ;;
esac

# ---- 2. environment, configure, build (only the targets run here) ------------------------------------
# The carried dependencies (MPI, HDF5, ... for the build and for every run), in every phase
# selection; sourced in this shell, as the exports serve every later step. Output in logs/env.log.
if ((!DRY)); then
  if device_env >"$LOGS/env.log" 2>&1; then _record env ok "($(tail -n 1 "$LOGS/env.log" | cut -c1-100))"
  else _record env FAILED "$(tail -n 1 "$LOGS/env.log")"; fi
fi
if phase build; then
  if ((DRY)) || [[ -n $PREBUILT ]]; then
    skip build "using the binaries in $BUILD_DIR"
  else
    need configure env && step configure 150 cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja "${CMAKE_ARGS[@]}" || true
    need build configure && step build 300 build_targets || true
    have_bin mnist_dist linkage && step linkage 30 linkage_facts || true
  fi
  note "built: $(built_list)"
  pack_results
fi

# ---- 3. the GPU tests ---------------------------------------------------------------------------------
if phase gpu-tests; then
  for t in test_gpu test_gpu_staging; do
    gpu_bin_step "gpu-$t" 120 "tests/gpu/$t" gpu_test "$t" || true
  done
  gpu_bin_step gpu-test_gpu_nccl 90 tests/gpu/test_gpu_nccl gpu_test_nccl || true
  # The real executables: --resume auto on an empty folder, GPU checkpoint on the CPU, the loss
  # window, two host-staged ranks vs two CPU ranks, NCCL refusing two ranks on one GPU, and
  # --deterministic (micro-steps and two host-staged ranks equal one run bit for bit; exit 4).
  gpu_bin_step gpu-test_gpu_e2e 200 tests/gpu/test_gpu_e2e gpu_test test_gpu_e2e || true
  pack_results
fi

# ---- 4. real data: accuracy, resume paths, GPU vs CPU ----------------------------------------------
TRAIN_DEV=cuda
((HAVE_GPU)) || TRAIN_DEV=cpu  # the CPU stands in for the GPU where there is none (dry run)
export TRAIN_DEV MIN_VAL_ACC LOSS_TOL CMP_STEPS
if phase data; then
  step data-idx 60 data_idx || true
  need data-prepare data-idx && step data-prepare 60 data_prepare || true
fi
if phase train && need train data-prepare; then
  if ((HAVE_GPU)) || ((NO_GPU_OK)); then
    step "train-epoch-$TRAIN_DEV" 120 train_epoch &&
      step accuracy-epoch 10 python3 "$HERE/check_runs.py" accuracy "$RUNS/epoch-$TRAIN_DEV" --min "$MIN_VAL_ACC" || true
    step "resume-auto-empty-$TRAIN_DEV" 60 resume_auto_empty &&
      step compare-resume-auto 10 python3 "$HERE/check_runs.py" losses "$RUNS/epoch-$TRAIN_DEV" \
        "$RUNS/resume-auto-empty-$TRAIN_DEV" --tol "$LOSS_TOL" --max-step 30 --min-steps 3 || true
    need resume-on-cpu "train-epoch-$TRAIN_DEV" && step resume-on-cpu 90 resume_on_cpu || true
  fi
  pack_results
fi
if phase compare && need compare data-prepare; then
  gpu_step tf32off-cuda 60 steps_run cuda tf32off-cuda --tf32 off || true
  step steps-cpu 90 steps_run cpu steps-cpu || true
  need compare-tf32off-cpu tf32off-cuda steps-cpu &&
    step compare-tf32off-cpu 10 python3 "$HERE/check_runs.py" losses "$RUNS/tf32off-cuda" "$RUNS/steps-cpu" \
      --tol "$LOSS_TOL" --min-steps "$CMP_STEPS" || true
  pack_results
fi
if phase mpi && need mpi data-prepare; then
  if command -v mpiexec >/dev/null; then
    gpu_step mpi2-cuda-host-staged 90 mpi2_run cuda mpi2-cuda-host-staged --comm host-staged || true
    step mpi2-cpu 90 mpi2_run cpu mpi2-cpu || true
    need compare-mpi2 mpi2-cuda-host-staged mpi2-cpu &&
      step compare-mpi2 10 python3 "$HERE/check_runs.py" losses "$RUNS/mpi2-cuda-host-staged" "$RUNS/mpi2-cpu" \
        --tol "$LOSS_TOL" --min-steps 20 || true
  else
    skip mpi "no mpiexec"
  fi
  pack_results
fi

# ---- 5. the benchmark: engine, PyTorch, trainer on the same GPU -----------------------------------
if phase bench; then
  for b in $BENCH_BATCHES; do
    gpu_bin_step "bench-ours-b$b" 60 tests/gpu/bench_gpu_epoch bench_ours "$b" || true
    gpu_step "bench-torch-b$b" 90 bench_torch "$b" || true
    gpu_step "trainer-b$b" 60 trainer_run "$b" || true
  done
  step bench-table 10 python3 "$HERE/bench_table.py" --logs "$LOGS" --runs "$RUNS" --batches "$BENCH_BATCHES" \
    --gpu "${GPU_NAME:-no GPU}" --out "$OUT/bench_table.md" || true
  pack_results
fi

# ---- 6. compute-sanitizer over the GPU layer tests --------------------------------------------------
if phase sanitizer; then
  gpu_bin_step memcheck 120 tests/gpu/test_gpu sanitize memcheck 'Gpu*:-GpuModel.*' || true
  gpu_bin_step racecheck 90 tests/gpu/test_gpu sanitize racecheck 'GpuBatchNorm.*:GpuSoftmaxXent.*' || true
fi

# ---- 7. CPU unit tests, only with time left (never in a dry run: ctest runs that) -------------------
if phase cpu-tests; then
  if ((DRY)); then skip cpu-tests "dry run (ctest is running this script)"
  elif (($(left_s) - RESERVE_S < ${CPU_TESTS_MIN_S:-120})); then skip cpu-tests "under ${CPU_TESTS_MIN_S:-120}s left"
  else step cpu-tests "${CPU_TESTS_CAP_S:-400}" cpu_unit_tests || true
  fi
fi
