#!/usr/bin/env bash
# test.sh: sets up (packages + build), then runs the whole test suite through ctest.
# Usage: launch/test.sh [ctest arguments...]   e.g. launch/test.sh -L unit
# (env: MNIST_DIST_SKIP_SANITIZERS=1, MNIST_DIST_SKIP_FUZZ=1, MNIST_DIST_FUZZ_SECONDS=60)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build}
"$root/launch/setup.sh"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j "${TEST_JOBS:-2}" "$@"

# Then the unit and MPI tests under AddressSanitizer + UBSan (build-asan) and the fuzzers (60 s
# each, build-fuzz); either failing fails this script. Skip them with
# MNIST_DIST_SKIP_SANITIZERS=1 / MNIST_DIST_SKIP_FUZZ=1 (MNIST_DIST_FUZZ_SECONDS=N changes 60).
if [ "${MNIST_DIST_SKIP_SANITIZERS:-0}" = 1 ]; then
  echo "test.sh: sanitizer run skipped (MNIST_DIST_SKIP_SANITIZERS=1)"
else
  "$root/launch/sanitize.sh"
fi
if [ "${MNIST_DIST_SKIP_FUZZ:-0}" = 1 ]; then
  echo "test.sh: fuzzing skipped (MNIST_DIST_SKIP_FUZZ=1)"
else
  "$root/launch/fuzz.sh" "${MNIST_DIST_FUZZ_SECONDS:-60}"
fi
