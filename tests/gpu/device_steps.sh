# device_steps.sh — what each step of tests/gpu/run_on_device.sh runs, as functions exported to
# the child bash that `step` starts under `timeout` (device_lib.sh). Sourced, not run. They read
# ROOT HERE BUILD_DIR DEVDATA WORK LOGS RUNS XML JOBS DRY TRAIN_DEV MIN_VAL_ACC LOSS_TOL (exported
# by the caller); output goes to the step's log; non-zero return = the step failed.
# shellcheck shell=bash

# The targets the check runs (a string: arrays do not reach the child bash of `step`).
export MD_TARGETS="mnist_dist mnist_prepare test_gpu test_gpu_staging test_gpu_nccl test_gpu_e2e bench_gpu_epoch"
export BENCH_EPOCHS TORCH_PYTHON="${TORCH_PYTHON:-}"

# Open MPI as root, in a VM without ptrace rights for CMA, oversubscribed (env_on_device.sh sets
# the same on the device; a dry run on a CI machine needs them too).
export_mpi_defaults() {
  if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
  export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
}

# Only the targets the check runs; ninja -k 0 goes on past a broken file, so whatever built runs.
build_targets() {
  local ok=0 targets
  read -r -a targets <<<"$MD_TARGETS"
  cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}" -- -k 0 || ok=$?
  echo "built: $(built_list)"
  return "$ok"
}
built_list() {
  local t f out=()
  for t in $MD_TARGETS; do
    f=$(bin_path "$t")
    if [[ -x $f ]]; then out+=("$t"); else out+=("$t(MISSING)"); fi
  done
  echo "${out[*]}"
}
bin_path() {
  case $1 in
    mnist_dist | mnist_prepare) echo "$BUILD_DIR/$1" ;;
    *) echo "$BUILD_DIR/tests/gpu/$1" ;;
  esac
}
# have_bin REL STEP: true when $BUILD_DIR/REL was built; else STEP is recorded as skipped.
have_bin() {
  [[ -x $BUILD_DIR/$1 ]] && return 0
  skip "$2" "$1 was not built"
  return 1
}

linkage_facts() {
  echo "== ldd $BUILD_DIR/mnist_dist"
  ldd "$BUILD_DIR/mnist_dist"
  echo "== libraries as loaded now (LD_LIBRARY_PATH of the build environment)"
  python3 "$HERE/lib_versions.py" || true
  echo "== CMake's choices"
  grep -E '^(CUDNN|NCCL)_(INCLUDE_DIR|LIBRARY)|^CMAKE_CUDA_ARCHITECTURES|^CMAKE_CUDA_COMPILER:|^MPI_CXX_LIBRARIES|^PNG_LIBRARY' \
    "$BUILD_DIR/CMakeCache.txt" || true
}

# ---- the GPU tests --------------------------------------------------------------------------------
gpu_test() {
  local t=$1 rc=0
  CUDNN_LOGLEVEL_DBG=3 CUDNN_LOGDEST_DBG="$LOGS/cudnn-$t.log" \
    "$BUILD_DIR/tests/gpu/$t" --gtest_color=no --gtest_output="xml:$XML/$t.xml" || rc=$?
  python3 "$HERE/check_runs.py" gtest-xml "$XML/$t.xml" || { ((rc)) || rc=1; }
  return "$rc"
}
gpu_test_nccl() {
  local rc=0
  NCCL_DEBUG=INFO NCCL_DEBUG_FILE="$LOGS/nccl.%h.%p.log" CUDNN_LOGLEVEL_DBG=2 CUDNN_LOGDEST_DBG=stderr \
    mpiexec -n 1 --oversubscribe "$BUILD_DIR/tests/gpu/test_gpu_nccl" --gtest_color=no \
    --gtest_output="xml:$XML/test_gpu_nccl.xml" || rc=$?
  python3 "$HERE/check_runs.py" gtest-xml "$XML/test_gpu_nccl.xml" || { ((rc)) || rc=1; }
  return "$rc"
}

# ---- data ---------------------------------------------------------------------------------------------
# $WORK/idx: the carried Fashion-MNIST (checksums verified); in a dry run a small subset of it (or
# of Debian's dataset-fashion-mnist) so that CI stays fast.
data_idx() {
  local src=$DEVDATA/fashion-mnist
  if ((DRY)); then
    [[ -f $src/train-images-idx3-ubyte.gz ]] || src=${FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}
    [[ -f $src/train-images-idx3-ubyte.gz ]] ||
      { echo "no Fashion-MNIST in $DEVDATA/fashion-mnist or $src (apt-get install dataset-fashion-mnist)"; return 1; }
    python3 "$HERE/idx_subset.py" "$src" "$WORK/idx" --train "${DRY_TRAIN:-3000}" --test "${DRY_TEST:-1000}"
  else
    [[ -f $src/SHA256SUMS ]] ||
      { echo "no $src/SHA256SUMS: run tests/gpu/prepare_device_carry.sh and carry .devdata"; return 1; }
    (cd "$src" && sha256sum -c SHA256SUMS)
    ln -sfn "$src" "$WORK/idx"
  fi
}
data_prepare() { "$BUILD_DIR/mnist_prepare" --idx-dir "$WORK/idx" --out "$WORK/data"; }

# ---- training runs --------------------------------------------------------------------------------------
train() { "$BUILD_DIR/mnist_dist" --data "$WORK/data" --progress lines --batch-size 64 "$@"; }

# One epoch at batch 64 with checkpoints (the accuracy check and the checkpoint for resume_on_cpu).
train_epoch() {
  train --device "$TRAIN_DEV" --epochs 1 --seed 1 --log-every 10 --run-dir "$RUNS/epoch-$TRAIN_DEV" \
    --checkpoint-dir "$WORK/ckpt-$TRAIN_DEV"
}
# --resume auto with an empty checkpoint folder: a fresh start (issue 18: Adam rebuilt without its
# backend); its losses are compared with train_epoch's first 30 steps.
resume_auto_empty() {
  mkdir -p "$WORK/ckpt-empty"
  train --device "$TRAIN_DEV" --resume auto --checkpoint-dir "$WORK/ckpt-empty" --max-steps 30 --seed 1 \
    --log-every 10 --run-dir "$RUNS/resume-auto-empty-$TRAIN_DEV"
}
# The epoch's checkpoint (made on the GPU) resumed with --device cpu for 20 more steps; the test
# accuracy shows that the weights came back.
resume_on_cpu() {
  local s min
  cp -r "$WORK/ckpt-$TRAIN_DEV" "$WORK/ckpt-resume"
  ls -l "$WORK/ckpt-resume"
  s=$(python3 "$HERE/check_runs.py" steps "$RUNS/epoch-$TRAIN_DEV")
  train --device cpu --resume auto --checkpoint-dir "$WORK/ckpt-resume" --epochs 2 --max-steps $((s + 20)) \
    --seed 1 --log-every 10 --run-dir "$RUNS/resume-on-cpu" 2>&1 | tee "$WORK/resume-on-cpu.out"
  grep -q "resuming from $WORK/ckpt-resume" "$WORK/resume-on-cpu.out" ||
    { echo "resume-on-cpu: no 'resuming from $WORK/ckpt-resume' line"; return 1; }
  min=$(awk -v m="$MIN_VAL_ACC" 'BEGIN {print m - 0.05}')
  python3 "$HERE/check_runs.py" accuracy "$RUNS/resume-on-cpu" --what test --min "$min"
}
# steps_run DEVICE NAME [FLAGS...]: CMP_STEPS (100) steps from seed 3, a step record every step.
steps_run() {
  local dev=$1 name=$2
  shift 2
  train --device "$dev" --max-steps "$CMP_STEPS" --seed 3 --log-every 1 --run-dir "$RUNS/$name" "$@"
}
# mpi2_run DEVICE NAME [FLAGS...]: 2 ranks, 20 steps from seed 3.
mpi2_run() {
  local dev=$1 name=$2
  shift 2
  mpiexec -n 2 --oversubscribe "$BUILD_DIR/mnist_dist" --data "$WORK/data" --progress lines --batch-size 64 \
    --device "$dev" --max-steps 20 --seed 3 --log-every 1 --run-dir "$RUNS/$name" "$@"
}

# ---- the benchmark --------------------------------------------------------------------------------------
bench_ours() {
  "$BUILD_DIR/tests/gpu/bench_gpu_epoch" "$WORK/idx" --batch-size "$1" --epochs "$BENCH_EPOCHS" --samples 60000
}
bench_torch() {
  local py=$TORCH_PYTHON
  if [[ -z $py ]]; then
    for py in python3 /opt/torch/.venv/bin/python3 ""; do
      [[ -n $py ]] && "$py" -c 'import torch' 2>/dev/null && break
    done
  fi
  [[ -n $py ]] || { echo "no Python with torch (set TORCH_PYTHON)"; return 1; }
  PYTHONUNBUFFERED=1 "$py" "$HERE/torch_gpu_bench.py" "$WORK/idx" --batch-size "$1" --epochs "$BENCH_EPOCHS" \
    --samples 60000 --shuffle once
}
trainer_run() {
  "$BUILD_DIR/mnist_dist" --data "$WORK/data" --device cuda --epochs 2 --batch-size "$1" --progress lines \
    --log-every 1000000 --run-dir "$RUNS/trainer-b$1"
}

# ---- compute-sanitizer, CPU tests ---------------------------------------------------------------------
sanitize() {
  local tool=$1 filter=$2 cs
  for cs in "$(command -v compute-sanitizer || true)" /usr/local/cuda/bin/compute-sanitizer \
    /usr/local/cuda/compute-sanitizer/compute-sanitizer ""; do
    [[ -n $cs && -x $cs ]] && break
  done
  [[ -n $cs ]] || { echo "compute-sanitizer not found"; return 1; }
  "$cs" --tool "$tool" --error-exitcode 3 --print-limit 50 "$BUILD_DIR/tests/gpu/test_gpu" \
    --gtest_color=no --gtest_filter="$filter" --gtest_output="xml:$XML/sanitizer-$tool.xml"
}
cpu_unit_tests() {
  cmake --build "$BUILD_DIR" -j "$JOBS" -- -k 0 || echo "(some targets did not build)"
  ctest --test-dir "$BUILD_DIR" -L unit -j "$JOBS" --output-on-failure --output-junit "$XML/ctest-unit.xml"
}

# ---- packing: at most 8 files come back, 16 MiB each --------------------------------------------------
# results.tar.gz: logs/, runs/, xml/ of $WORK (checkpoints listed, not packed); logs over 8 MiB
# keep their first 6 and last 1 MiB; over 15 MiB packed, the cuDNN/NCCL logs are left out.
pack_results() {
  local f tmp=$OUT/.results.tar.gz.part
  find "$WORK" -maxdepth 2 -name 'ckpt-*' -exec ls -l {} + >"$LOGS/checkpoints.txt" 2>&1 || true
  while IFS= read -r f; do
    { head -c 6M "$f"; printf '\n[... cut by pack_results ...]\n'; tail -c 1M "$f"; } >"$f.cut" && mv "$f.cut" "$f"
  done < <(find "$LOGS" -type f -size +8M)
  tar -C "$WORK" -czf "$tmp" logs runs xml 2>/dev/null || true
  if (($(stat -c %s "$tmp" 2>/dev/null || echo 0) > 15 * 1048576)); then
    tar -C "$WORK" -czf "$tmp" --exclude='cudnn-*' --exclude='nccl.*' logs runs xml 2>/dev/null || true
  fi
  mv -f "$tmp" "$OUT/results.tar.gz" 2>/dev/null || true
}

export -f export_mpi_defaults build_targets built_list bin_path linkage_facts gpu_test gpu_test_nccl \
  data_idx data_prepare train train_epoch resume_auto_empty resume_on_cpu steps_run mpi2_run \
  bench_ours bench_torch trainer_run sanitize cpu_unit_tests
