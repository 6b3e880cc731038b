# device_env.sh — the build environment of the device check, sourced by tests/gpu/run_on_device.sh
# (not run): unpacks and exports the carried .debs (../shared/device/env_on_device.sh, copied into
# .devdeps), then fills the array CMAKE_ARGS for configuring the project for sm_90 on the GPU
# image. Prints what it chose. Needs DEVDEPS and DEVDATA set; returns non-zero when the carried
# dependencies are missing or fail to unpack.
#
# What the GPU image lacks and how each is found:
# - MPI, HDF5, GoogleTest: env_on_device.sh (prefix /opt/deps, DEVKIT_CMAKE_ARGS).
# - OpenBLAS, nlohmann-json, CLI11, libpng: the extra .debs, through CMAKE_PREFIX_PATH.
# - zlib/OpenSSL headers: the .debs' headers with the image's own runtime libraries (Debian's
#   libz.so link points at an absolute Debian path).
# - cuDNN/NCCL headers: when env_on_device.sh found no header + library in one root (pip wheels
#   without headers), the carried $DEVDATA/cuda-include with the image's library.
# - CMake 4 (pip's cmake): CMAKE_POLICY_VERSION_MINIMUM=3.5 for any dependency's old
#   cmake_minimum_required (GTest's config is fine; this is insurance).
# shellcheck shell=bash

CMAKE_ARGS=()

# The image's own copy of a library (path), read to the end (no SIGPIPE under pipefail).
_sys_lib() { { ldconfig -p 2>/dev/null || true; } | awk -v n="$1" '$1 == n && /x86-64/ && !f {print $NF; f = 1}'; }

# The library file for soname $1: the pip wheel nvidia.$2 (lib/), then ldconfig, then the toolkit.
_cuda_lib() {
  local soname=$1 wheel=$2 py f
  for py in python3 /opt/torch/.venv/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    f=$("$py" -c 'import importlib, os, sys
for p in importlib.import_module("nvidia." + sys.argv[1]).__path__:
    f = os.path.join(p, "lib", sys.argv[2])
    if os.path.exists(f): print(f); break' "$wheel" "$soname" 2>/dev/null || true)
    [[ -n $f ]] && { echo "$f"; return 0; }
  done
  f=$(_sys_lib "$soname")
  [[ -n $f ]] && { echo "$f"; return 0; }
  for f in "${CUDA_HOME:-/usr/local/cuda}"/lib64/"$soname" "${CUDA_HOME:-/usr/local/cuda}"/lib/"$soname"; do
    [[ -e $f ]] && { echo "$f"; return 0; }
  done
  return 1
}

# _header_fallback PKG HEADER SONAME WHEEL
_header_fallback() {
  local pkg=$1 header=$2 soname=$3 wheel=$4 inc lib
  inc=${pkg}_INCLUDE_DIR
  if [[ -n ${!inc:-} ]]; then
    echo "device_env: $pkg: header and library of the image (${!inc})"
    return 0
  fi
  if ! lib=$(_cuda_lib "$soname" "$wheel"); then
    echo "device_env: $pkg: no $soname on the image: the CUDA backend cannot be built"
    return 0
  fi
  [[ -f $DEVDATA/cuda-include/$header ]] ||
    { echo "device_env: $pkg: the image has $lib but no $header, and none is carried"; return 0; }
  echo "device_env: $pkg: the image has no $header: carried headers ($DEVDATA/cuda-include) with $lib"
  CMAKE_ARGS+=("-D${pkg}_INCLUDE_DIR=$DEVDATA/cuda-include" "-D${pkg}_LIBRARY=$lib")
  export "${pkg}_LIBRARY=$lib" LD_LIBRARY_PATH="${lib%/*}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

device_env() {
  [[ -f $DEVDEPS/env_on_device.sh ]] || {
    echo "device_env: no $DEVDEPS/env_on_device.sh: run tests/gpu/prepare_device_carry.sh and carry .devdeps"
    return 1
  }
  # shellcheck disable=SC1091
  source "$DEVDEPS/env_on_device.sh" "$DEVDEPS" || { echo "device_env: env_on_device.sh failed"; return 1; }
  local P=${DEVKIT_PREFIX:-/opt/deps} lib
  local PI=$P/usr/include PL=$P/usr/lib/x86_64-linux-gnu
  # shellcheck disable=SC2206  # DEVKIT_CMAKE_ARGS is a list of -D options without spaces
  CMAKE_ARGS+=(${DEVKIT_CMAKE_ARGS:-} -DCMAKE_BUILD_TYPE=Release -DMNIST_DIST_CUDA=ON
               -DCMAKE_CUDA_ARCHITECTURES="${DEVKIT_CUDA_ARCH:-90}" -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  export CMAKE_PREFIX_PATH=$P/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  if [[ -e $PL/openblas-pthread/libopenblas.so ]]; then
    export LD_LIBRARY_PATH=$PL/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    CMAKE_ARGS+=(-DCBLAS_INCLUDE_DIR="$PI/x86_64-linux-gnu/openblas-pthread")
  fi
  lib=$(_sys_lib libz.so.1)
  if [[ ! -e /usr/include/zlib.h && -e $PI/zlib.h && -n $lib ]]; then
    CMAKE_ARGS+=(-DZLIB_INCLUDE_DIR="$PI" -DZLIB_LIBRARY="$lib")
  fi
  lib=$(_sys_lib libcrypto.so.3)
  if [[ ! -e /usr/include/openssl/evp.h && -e $PI/openssl/evp.h && -n $lib ]]; then
    CMAKE_ARGS+=(-DOPENSSL_INCLUDE_DIR="$PI" -DOPENSSL_CRYPTO_LIBRARY="$lib"
                 -DCMAKE_CXX_FLAGS="-isystem $PI/x86_64-linux-gnu")
  fi
  _header_fallback CUDNN cudnn.h libcudnn.so.9 cudnn
  _header_fallback NCCL nccl.h libnccl.so.2 nccl
  echo "device_env: cmake $(command -v cmake) ($(cmake --version | head -n 1)); arguments: ${CMAKE_ARGS[*]}"
}
