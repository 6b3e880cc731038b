#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets (tests/fuzz: the IDX parser, the manifest/shard reader)
# with clang + ASan + UBSan in a separate build directory, writes their seed corpus, and runs each
# for SECONDS seconds (default 60). Fails on any crash, sanitizer report, leak, uncaught
# exception or fatal(); the input that triggered it is kept in $FUZZ_BUILD_DIR/artifacts/.
# Usage: launch/fuzz.sh [SECONDS]   (env: FUZZ_BUILD_DIR=build-fuzz, CLANG_CXX=clang++, CLANG_CC=clang,
#                                    JOBS=nproc, FUZZ_ARGS="extra libFuzzer flags")
set -euo pipefail

usage() { echo "usage: $0 [SECONDS]   (seconds per target, default 60)"; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
seconds=${1:-60}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: SECONDS must be a positive integer (got '$seconds')" >&2; usage >&2; exit 2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${CLANG_CXX:-clang++}
cc=${CLANG_CC:-clang}
jobs=${JOBS:-$(nproc)}
t0=$SECONDS
command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

echo "fuzz.sh: configuring and building $build with $cxx"
mkdir -p "$build"
cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; echo "fuzz.sh: configure failed" >&2; exit 1; }
cmake --build "$build" -j "$jobs" --target fuzz_idx fuzz_shards
"$root/tests/fuzz/make_corpus.sh" "$build" "$build/seeds"
echo "fuzz.sh: built in $((SECONDS - t0)) s"

# Symbolized stacks need llvm-symbolizer (Debian: llvm, or llvm-14 under /usr/lib/llvm-14/bin).
if ! command -v llvm-symbolizer >/dev/null && [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for s in /usr/lib/llvm-*/bin/llvm-symbolizer; do [ -x "$s" ] && export ASAN_SYMBOLIZER_PATH="$s"; done
fi
# ASan/UBSan inside libFuzzer: a report is a crash (libFuzzer's own handlers write the input).
#  - allocator_may_return_null=1: a malloc() too large to satisfy returns NULL, as it does in
#    production, so that HDF5 (C code) reports "memory allocation failed" for a corrupt size
#    field instead of ASan aborting inside HDF5. C++ `new` still aborts (reported as out-of-memory).
#  - leak:libhdf5: HDF5 1.10.8 leaks free-list blocks on its own error paths (e.g. H5Fopen of a
#    file whose root object header is damaged). The only memory HDF5 hands to our code is
#    variable-length strings (freed with H5free_memory); HDF5 objects we leave open are caught
#    separately by fuzz_shards (H5Fget_obj_count).
printf '%s\n' 'leak:libhdf5' >"$build/lsan.supp"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:allocator_may_return_null=1${ASAN_OPTIONS_EXTRA:+:$ASAN_OPTIONS_EXTRA}"
export LSAN_OPTIONS="suppressions=$build/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# The targets' scratch files (a small data set, rewritten per input) go to tmpfs when there is
# one; removed here even when a target crashed.
scratch=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/md_fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export MD_FUZZ_SCRATCH="$scratch"
failed=()
for target in fuzz_idx fuzz_shards; do
  corpus="$build/corpus/$target"  # grows across runs on the same machine; seeds stay separate
  mkdir -p "$corpus" "$build/artifacts"
  # Inputs that once crashed or hung a target (tests/fuzz/regressions/<target>/) run first, every time.
  inputs=("$corpus" "$build/seeds/$target")
  [ -d "$root/tests/fuzz/regressions/$target" ] && inputs+=("$root/tests/fuzz/regressions/$target")
  log="$build/$target.log"
  echo "fuzz.sh: running $target for $seconds s (log: $log)"
  rc=0
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a bounded-memory reader must stay far below.
  timeout -k 10 $((seconds + 120)) "$build/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -print_funcs=0 -artifact_prefix="$build/artifacts/$target-" ${FUZZ_ARGS:-} \
    "${inputs[@]}" >"$log" 2>&1 || rc=$?
  if ((rc == 0)); then
    echo "fuzz.sh: $target: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') inputs, no crash"
  else
    failed+=("$target")
    echo "fuzz.sh: $target FAILED (exit $rc); the end of its log:" >&2
    grep -vE '^#[0-9]+' "$log" | tail -60 >&2
    ls "$build"/artifacts/"$target"-* 2>/dev/null >&2 || true
  fi
done
echo "fuzz.sh: done in $((SECONDS - t0)) s"
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]} (reproduce: $build/<target> $build/artifacts/<file>)" >&2
  exit 1
fi
