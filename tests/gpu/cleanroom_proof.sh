#!/usr/bin/env bash
# cleanroom_proof.sh — the CPU-side proof of tests/gpu/run_on_device.sh (issue 18 item 3): the
# whole device check, configure and build for sm_90 included, on this Debian 12 machine with what
# the GPU image lacks hidden, GPU steps skipped (--no-gpu-ok). Needs root, the carried folders
# (tests/gpu/prepare_device_carry.sh) and ../shared/device/cleanroom.sh. Writes $OUT (default
# out/cleanroom) like the device call writes its $OUT.
#
# What is hidden: cleanroom.sh's `bare` mode (this machine's MPI, HDF5, GoogleTest, libcurl4,
# ssh, the cuDNN/NCCL headers and unversioned .so of /usr/local/cuda) plus, inside the namespace,
# the engine's -dev packages the GPU image lacks (HIDE_PKGS below: OpenBLAS, nlohmann-json,
# CLI11, OpenSSL/zlib/libpng headers), so that only the carried .debs can provide them.
# CMake: the device image's cmake is PyPI's (KINDS.md lists `cmake` among its Python packages),
# a manylinux wheel that carries its own curl and needs no libcurl.so.4. Debian's cmake here is
# linked to libcurl4, which `bare` hides; so cmake and ctest run as copies whose RUNPATH holds a
# private copy of libcurl.so.4 (made before the namespace hides it) — like the wheel, cmake alone
# has its curl, and nothing it starts sees it. (PyPI itself is not reachable from here.)
# usage: cleanroom_proof.sh [run_on_device.sh arguments...]     (default: --no-gpu-ok)
# Knobs: OUT, SHARED_DEVICE (../shared/device), and run_on_device.sh's (the defaults here give the
#   2-core build room: DEVICE_DEADLINE_S=5400, DEVICE_STEP_CAP_S=3600, DEVICE_CAP_SCALE=10,
#   BUILD_DIR=build-cleanroom).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HIDE_PKGS=(libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libblas-dev libblas3
           liblapack-dev liblapack3 libgfortran5 libquadmath0 nlohmann-json3-dev libcli11-dev libssl-dev
           zlib1g-dev libpng-dev)

if [[ ${1:-} == --inside ]]; then
  shift
  # Only inside cleanroom.sh's namespace, where /usr is an overlay over a throwaway upper layer.
  [[ -n ${_CLEANROOM_OV:-} && $(findmnt -n -o FSTYPE /usr) == overlay ]] ||
    { echo "cleanroom_proof: --inside only runs inside cleanroom.sh (/usr must be an overlay)" >&2; exit 1; }
  n=0
  for p in "${HIDE_PKGS[@]}"; do
    while read -r f; do
      case $f in /usr/* | /etc/*) ;; /lib/* | /bin/* | /sbin/*) f=/usr$f ;; *) continue ;; esac
      if [[ -f $f || -L $f ]]; then rm -f "$f"; n=$((n + 1)); fi
    done < <(dpkg -L "$p" 2>/dev/null || true)
  done
  ldconfig
  echo "cleanroom_proof: hid $n files of ${#HIDE_PKGS[@]} -dev/runtime packages the GPU image lacks" >&2
  exec bash "$ROOT/tests/gpu/run_on_device.sh" "$@"
fi

[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; }
[[ $(id -u) == 0 ]] || { echo "cleanroom_proof: needs root (cleanroom.sh)" >&2; exit 1; }
SHARED_DEVICE=${SHARED_DEVICE:-$ROOT/../shared/device}
[[ -f $SHARED_DEVICE/cleanroom.sh ]] || { echo "cleanroom_proof: no $SHARED_DEVICE/cleanroom.sh" >&2; exit 1; }
command -v patchelf >/dev/null || { echo "cleanroom_proof: needs patchelf (apt-get install patchelf)" >&2; exit 1; }

# cmake/ctest with their own libcurl (see the header).
TOOLS=$ROOT/build-cleanroom-tools
mkdir -p "$TOOLS/bin" "$TOOLS/lib" "$TOOLS/share"
# shellcheck disable=SC2016  # a CMake expression, not a shell one
echo 'message("${CMAKE_ROOT}")' >"$TOOLS/root.cmake"
ln -sfn "$(cmake -P "$TOOLS/root.cmake" 2>&1)" "$TOOLS/share/"  # the modules, found beside the binary
cp -L "$(ldconfig -p | awk '$1 == "libcurl.so.4" && /x86-64/ {print $NF; exit}')" "$TOOLS/lib/libcurl.so.4"
for t in cmake ctest; do
  cp "$(command -v "$t")" "$TOOLS/bin/$t.new"
  patchelf --set-rpath "$TOOLS/lib" "$TOOLS/bin/$t.new"
  mv -f "$TOOLS/bin/$t.new" "$TOOLS/bin/$t"  # a rename: fine while an old copy still runs
done
"$TOOLS/bin/cmake" --version | head -n 1

export OUT=${OUT:-$ROOT/out/cleanroom} BUILD_DIR=${BUILD_DIR:-$ROOT/build-cleanroom}
export DEVICE_DEADLINE_S=${DEVICE_DEADLINE_S:-5400} DEVICE_STEP_CAP_S=${DEVICE_STEP_CAP_S:-3600}
export DEVICE_CAP_SCALE=${DEVICE_CAP_SCALE:-10}  # steps sized for 16 cores and a GPU, here on 2 cores
(($#)) || set -- --no-gpu-ok
PATH=$TOOLS/bin:$PATH exec bash "$SHARED_DEVICE/cleanroom.sh" bare -- bash "$0" --inside "$@"
