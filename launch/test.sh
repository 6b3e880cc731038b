#!/usr/bin/env bash
# test.sh: sets up (packages + build), then runs the whole test suite through ctest.
# Usage: launch/test.sh [ctest arguments...]   e.g. launch/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build}
"$root/launch/setup.sh"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j "${TEST_JOBS:-2}" "$@"
