#!/usr/bin/env bash
# sanitize.sh: builds the unit, data and MPI tests with AddressSanitizer + UndefinedBehaviorSanitizer
# (-O1 -g) in a separate build directory and runs them (ctest -L "unit|mpi" -LE multinode). Any ASan, LSan or
# UBSan report fails the run; the only suppressed reports are third-party leaks (listed below).
# Usage: launch/sanitize.sh [ctest arguments...]
#   env: ASAN_BUILD_DIR (default build-asan), CXX (g++; clang++ works too), JOBS (nproc),
#        TEST_JOBS (2), SANITIZE_TARGETS (default: every md_add_gtest(NAME unit|mpi ...) and
#        md_add_mpi_test(NAME ...) under tests/, minus SANITIZE_EXCLUDE), SANITIZE_EXCLUDE
#        (default "test_mpi_e2e": it needs the whole mnist_dist executable, which doubles the
#        build time; set SANITIZE_EXCLUDE="" to run mnist_dist itself under the sanitizers too)
set -euo pipefail

usage() { echo "usage: $0 [ctest arguments...]   (env: ASAN_BUILD_DIR, CXX, JOBS, TEST_JOBS, SANITIZE_TARGETS, SANITIZE_EXCLUDE)"; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ASAN_BUILD_DIR:-$root/build-asan}
jobs=${JOBS:-$(nproc)}
cxx=${CXX:-g++}
exclude=${SANITIZE_EXCLUDE-test_mpi_e2e}
t0=$SECONDS

# The test executables labelled unit or mpi, read from the CMake files so that new ones join.
if [ -z "${SANITIZE_TARGETS:-}" ]; then
  SANITIZE_TARGETS=$(cat "$root"/tests/*/CMakeLists.txt |
    sed -nE 's/^[[:space:]]*md_add_gtest\([[:space:]]*([A-Za-z0-9_]+)[[:space:]]+(unit|mpi)([[:space:]]|\)|$).*/\1/p;
             s/^[[:space:]]*md_add_mpi_test\([[:space:]]*([A-Za-z0-9_]+).*/\1/p' | sort -u | tr '\n' ' ')
fi

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
echo "sanitize.sh: configuring $build ($cxx, -O1 -g $san)"
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g $san" \
  -DCMAKE_C_FLAGS_SANITIZE="-O1 -g $san" \
  -DCMAKE_EXE_LINKER_FLAGS_SANITIZE="$san" \
  -DCMAKE_SHARED_LINKER_FLAGS_SANITIZE="$san" \
  -DMNIST_DIST_CUDA=OFF -DMNIST_DIST_TESTS=ON >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; echo "sanitize.sh: configure failed" >&2; exit 1; }

# Build only those test executables (and what they depend on).
available=$(ninja -C "$build" -t targets all | sed -nE 's/^([A-Za-z0-9_]+): phony$/\1/p')
targets=()
for t in $SANITIZE_TARGETS; do
  if [[ " $exclude " == *" $t "* ]]; then echo "sanitize.sh: $t excluded (SANITIZE_EXCLUDE)"; continue; fi
  if grep -qx "$t" <<<"$available"; then targets+=("$t"); else echo "sanitize.sh: note: no target $t in this build"; fi
done
((${#targets[@]})) || { echo "sanitize.sh: no unit/mpi test targets to build" >&2; exit 1; }
echo "sanitize.sh: building ${targets[*]} with $jobs jobs"
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
echo "sanitize.sh: built in $((SECONDS - t0)) s"

# --- runtime options -------------------------------------------------------------------------
# LeakSanitizer suppressions, each for memory that is not ours (all seen in the MPI tests):
#  - libmpi / libopen-pal / libopen-rte: Open MPI 4.1 keeps its component registries, MCA
#    parameter strings, op/datatype tables and its ORTE/PMIx client state allocated after
#    MPI_Finalize; MPI_Abort paths (tests of failing ranks) leak everything by design.
#  - libevent: the event bases of Open MPI's progress thread, created in MPI_Init.
#  - libhwloc: the node topology Open MPI loads in MPI_Init and never releases.
# A suppression matches any frame of an allocation's stack. Open MPI unloads (dlclose) its mca_*
# components in MPI_Finalize, so the frame-pointer stack of a component's allocation ends in
# "<unknown module>" and would match nothing; fast_unwind_on_malloc=0 records full stacks (which
# pass through libmpi, still loaded) at the price of slower mallocs (~145 s instead of ~40 s).
# OpenMP (libgomp) and OpenBLAS needed neither a suppression nor an ASan option.
supp="$build/lsan.supp"
printf '%s\n' 'leak:libmpi.so' 'leak:libopen-pal.so' 'leak:libopen-rte.so' 'leak:libevent' \
  'leak:libhwloc.so' >"$supp"
# Any ASan/LSan/UBSan report ends the process with a distinct exit code, so its test fails.
export ASAN_OPTIONS="halt_on_error=1:exitcode=86:detect_leaks=1:fast_unwind_on_malloc=0${ASAN_OPTIONS_EXTRA:+:$ASAN_OPTIONS_EXTRA}"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"
# mpiexec (started by ctest) hands this environment on to the ranks it starts on this node.
export OMPI_MCA_btl_vader_single_copy_mechanism=none

cd "$build"
# The multinode tests (labelled mpi too where they need no root) start the mnist_dist executable,
# which this build does not build (see SANITIZE_EXCLUDE): launch/test.sh runs them in the main build.
echo "sanitize.sh: running ctest -L \"unit|mpi\" -LE multinode under ASan+UBSan"
rc=0
ctest --output-on-failure --timeout 900 -j "${TEST_JOBS:-2}" -L "unit|mpi" -LE multinode "$@" || rc=$?
if ((rc == 0)); then
  echo "sanitize.sh: passed in $((SECONDS - t0)) s"
else
  echo "sanitize.sh: FAILED (ctest exit $rc) after $((SECONDS - t0)) s" >&2
fi
exit "$rc"
