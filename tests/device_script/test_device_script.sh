#!/usr/bin/env bash
# test_device_script.sh — ctest cases (label device_script) of tests/gpu/run_on_device.sh on a
# machine without a GPU, over the binaries of the build that ctest runs in (never rebuilt here):
#   dry       the whole dry run: data prep, the CPU halves (1 epoch + accuracy, --resume auto on
#             an empty folder, resume on the CPU, the CPU runs of the comparisons, 2 CPU ranks),
#             GPU steps "skipped: no GPU", the table, the pack; PASS and exit 0
#   deadline  a step that outlives the deadline is killed (TIMEOUT), later steps are skipped for
#             lack of time, the summary and the pack are still written; exit 1
#   signal    TERM to the script mid-step: the step is KILLED, summary and pack written; exit 143
#   fail      a failing step makes the verdict FAIL and the exit status 1
#   checks    check_runs.py and bench_table.py on made-up inputs: each check can fail
# usage: test_device_script.sh CASE BUILD_DIR      (exit 77 = skipped, with the reason)
set -euo pipefail

usage() { echo "usage: $0 dry|deadline|signal|fail|checks BUILD_DIR" >&2; exit 2; }
(($# == 2)) || usage
CASE=$1 BUILD=$2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPT=$ROOT/tests/gpu/run_on_device.sh
GPU=$ROOT/tests/gpu
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/md-devscript-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUTD=$TMP/out
SUM=$OUTD/summary.txt

fail() {
  echo "FAIL ($CASE): $*"
  if [[ -f $SUM ]]; then echo "--- summary.txt"; cat "$SUM"; fi
  exit 1
}
has() { grep -qE -- "$1" "$SUM" || fail "summary.txt has no line matching /$1/"; }
# run_script [VAR=value...] -- ARGS...: runs the script (dry run over $BUILD) into $OUTD; RC, SECS.
run_script() {
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  RC=0
  local t=$SECONDS
  env OUT="$OUTD" DEVICE_WORK="$TMP/work" "${envs[@]}" bash "$SCRIPT" --dry-run --build-dir "$BUILD" "$@" \
    >"$TMP/stdout.log" 2>&1 || RC=$?
  SECS=$((SECONDS - t))
}
packed() {  # packed PATH...: each path is in results.tar.gz
  local listing p
  [[ -f $OUTD/results.tar.gz ]] || fail "no results.tar.gz"
  listing=$(tar -tzf "$OUTD/results.tar.gz")
  for p in "$@"; do grep -qx -- "$p" <<<"$listing" || fail "results.tar.gz lacks $p"; done
}

case $CASE in
  dry)
    [[ -x $BUILD/mnist_dist && -x $BUILD/mnist_prepare ]] || fail "no mnist_dist/mnist_prepare in $BUILD"
    if [[ ! -f $ROOT/.devdata/fashion-mnist/train-images-idx3-ubyte.gz &&
          ! -f ${FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}/train-images-idx3-ubyte.gz ]]; then
      echo "skipped: no Fashion-MNIST (apt-get install dataset-fashion-mnist, or launch/setup.sh)"
      exit 77
    fi
    run_script DEVICE_PHASES="data train compare mpi bench sanitizer cpu-tests" --
    ((RC == 0)) || fail "exit $RC, expected 0 ($(tail -n 3 "$TMP/stdout.log"))"
    for s in data-idx data-prepare train-epoch-cpu accuracy-epoch resume-auto-empty-cpu compare-resume-auto \
      resume-on-cpu steps-cpu bench-table; do
      has "^\[ *[0-9]+s\] ok +$s "
    done
    if command -v mpiexec >/dev/null; then has "ok +mpi2-cpu "; fi
    for s in tf32off-cuda mpi2-cuda-host-staged bench-torch-b128 trainer-b2048 memcheck racecheck; do
      has "skipped +$s +skipped: no GPU \(dry run\)"
    done
    has "skipped +compare-tf32off-cpu +skipped: needs tf32off-cuda"
    has "ended: completed"
    has "RESULT: PASS"
    packed runs/epoch-cpu/metrics.jsonl runs/resume-on-cpu/metrics.jsonl logs/train-epoch-cpu.log \
      logs/resume-on-cpu.log logs/checkpoints.txt
    [[ -f $OUTD/bench_table.md ]] || fail "no bench_table.md"
    n=$(find "$OUTD" -type f | wc -l)
    ((n <= 8)) || fail "$n files in OUT (at most 8 come back)"
    ;;
  deadline)
    run_script DEVICE_SELFTEST=hang DEVICE_DEADLINE_S=20 DEVICE_RESERVE_S=5 DEVICE_PHASES="data" --
    ((RC == 1)) || fail "exit $RC, expected 1"
    has "TIMEOUT +selftest-hang +killed after 1[0-9]s"
    has "skipped +data-idx +skipped: no time left"
    has "ended: completed"
    has "RESULT: FAIL — 1 failed \(selftest-hang\)"
    packed logs/selftest-hang.log
    ((SECS < 40)) || fail "took ${SECS}s: the deadline was 20s"
    ;;
  signal)
    OUT=$OUTD DEVICE_WORK=$TMP/work DEVICE_SELFTEST=hang DEVICE_PHASES=none \
      bash "$SCRIPT" --dry-run --build-dir "$BUILD" >"$TMP/stdout.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do [[ -f $TMP/work/logs/selftest-hang.log ]] && break; sleep 0.2; done
    sleep 1
    kill -TERM "$pid"
    RC=0
    wait "$pid" || RC=$?
    ((RC == 143)) || fail "exit $RC, expected 143"
    has "KILLED +selftest-hang +by signal TERM during step selftest-hang"
    has "ended: signal TERM during step selftest-hang"
    has "RESULT: FAIL"
    packed logs/selftest-hang.log
    ;;
  fail)
    run_script DEVICE_SELFTEST=fail DEVICE_PHASES=none --
    ((RC == 1)) || fail "exit $RC, expected 1"
    has "FAILED +selftest-fail +exit 1 after"
    has "RESULT: FAIL — 1 failed \(selftest-fail\)"
    ;;
  checks)
    mkdir -p "$TMP/a" "$TMP/b" "$TMP/c" "$TMP/logs"
    for s in 1 2 3; do
      echo "{\"kind\": \"step\", \"epoch\": 1, \"step\": $s, \"global_step\": $s, \"loss\": 2.$s}" >>"$TMP/a/metrics.jsonl"
      echo "{\"kind\": \"step\", \"epoch\": 1, \"step\": $s, \"global_step\": $s, \"loss\": 2.${s}0005}" >>"$TMP/b/metrics.jsonl"
      echo "{\"kind\": \"step\", \"epoch\": 1, \"step\": $s, \"global_step\": $s, \"loss\": 2.${s}2}" >>"$TMP/c/metrics.jsonl"
    done
    echo '{"kind": "epoch", "epoch": 1, "global_step": 3, "val_accuracy": 0.79}' >>"$TMP/a/metrics.jsonl"
    echo '{"kind": "test", "epoch": 1, "global_step": 3, "loss": 0.5, "accuracy": 0.81}' >>"$TMP/a/metrics.jsonl"
    c() { python3 "$GPU/check_runs.py" "$@" >/dev/null; }
    expect() { local want=$1 rc=0; shift; c "$@" || rc=$?; ((rc == want)) || fail "check_runs.py $* gave $rc, expected $want"; }
    expect 0 losses "$TMP/a" "$TMP/b" --tol 1e-3 --min-steps 3
    expect 1 losses "$TMP/a" "$TMP/c" --tol 1e-3
    expect 1 losses "$TMP/a" "$TMP/b" --tol 1e-3 --min-steps 4
    expect 1 accuracy "$TMP/a" --min 0.80
    expect 0 accuracy "$TMP/a" --min 0.80 --what test
    expect 2 accuracy "$TMP/nothing" --min 0.5
    [[ $(python3 "$GPU/check_runs.py" steps "$TMP/a") == 3 ]] || fail "steps: not 3"
    x='<testsuites><testsuite name="G"><testcase classname="G" name="a"/>'
    echo "$x<testcase classname=\"G\" name=\"b\"/></testsuite></testsuites>" >"$TMP/ok.xml"
    echo "$x<testcase classname=\"G\" name=\"b\"><skipped message=\"no usable GPU\"/></testcase></testsuite></testsuites>" >"$TMP/skip.xml"
    echo "$x<testcase classname=\"G\" name=\"b\"><failure message=\"off by 1\"/></testcase></testsuite></testsuites>" >"$TMP/bad.xml"
    expect 0 gtest-xml "$TMP/ok.xml"
    expect 1 gtest-xml "$TMP/skip.xml"
    expect 1 gtest-xml "$TMP/bad.xml"
    expect 2 gtest-xml "$TMP/missing.xml"
    for e in 1 2 3; do
      echo "{\"impl\": \"mnist_dist\", \"epoch\": $e, \"seconds\": 0.4, \"rate\": 150000.0}" >>"$TMP/logs/bench-ours-b128.log"
      echo "{\"impl\": \"torch\", \"epoch\": $e, \"seconds\": 1.2, \"rate\": 50000.0}" >>"$TMP/logs/bench-torch-b128.log"
    done
    table=$(python3 "$GPU/bench_table.py" --logs "$TMP/logs" --runs "$TMP" --batches "128 2048" --gpu test)
    grep -qF "| 128 | 0.400 (1st 0.400) | 150,000 | 1.200 (1st 1.200) | 50,000 | 3.00x | n/a | n/a |" <<<"$table" ||
      fail "bench_table.py: $table"
    grep -qF "| 2048 | n/a |" <<<"$table" || fail "bench_table.py: no n/a row for 2048"
    ;;
  *) usage ;;
esac
echo "ok: $CASE"
