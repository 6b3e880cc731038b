#!/usr/bin/env bash
# prepare_device_carry.sh — fills the two git-ignored folders that tests/gpu/run_on_device.sh
# needs on the lent GPU machine (which reaches no registry), and checks they fit the 64 MiB that
# a device call may carry together with the working tree:
#   .devdeps/   Debian 12 .debs (../shared/device/fetch_debs.sh: Open MPI, HDF5, GoogleTest) plus
#               the engine's build dependencies the GPU image lacks (PKGS_EXTRA below), ~28 MiB
#   .devdata/   fashion-mnist/  the four IDX .gz files: all 70,000 images when they fit, else the
#                               first DEVICE_SUBSET_TRAIN (20,000) train + the 10,000 test images
#               cuda-include/   this machine's cuDNN and NCCL headers, used on the device only if
#                               the image has none (pip wheels without headers)
# Run on a Debian 12 machine with network, in (or for) the checkout; about a minute.
# usage: prepare_device_carry.sh [--subset] [--skip-debs]
#   --subset     always carry the 20k subset;  --skip-debs  keep an existing .devdeps
# Knobs: SHARED_DEVICE (../shared/device beside the checkout), FASHION_MNIST_SRC
#   (/usr/share/datasets/fashion-mnist; else data_pipeline/fetch_data.sh installs it),
#   CUDA_HOME (/usr/local/cuda), DEVICE_SUBSET_TRAIN (20000), CARRY_LIMIT_MIB (62: 2 MiB margin).
set -euo pipefail

usage() { echo "usage: $0 [--subset] [--skip-debs]   (see the header of this script)"; }
SUBSET=0 SKIP_DEBS=0
for a in "$@"; do
  case $a in
    --subset) SUBSET=1 ;;
    --skip-debs) SKIP_DEBS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_DEVICE=${SHARED_DEVICE:-$ROOT/../shared/device}
FASHION_MNIST_SRC=${FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
DEVICE_SUBSET_TRAIN=${DEVICE_SUBSET_TRAIN:-20000}
CARRY_LIMIT_MIB=${CARRY_LIMIT_MIB:-62}
DEVDEPS=$ROOT/.devdeps DEVDATA=$ROOT/.devdata
# Build dependencies of the engine that the GPU image lacks (run_on_device.sh points CMake at
# them): OpenBLAS, nlohmann-json, CLI11, OpenSSL/zlib headers, libpng for the report tests.
PKGS_EXTRA=(libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0 nlohmann-json3-dev
            libcli11-dev libssl-dev zlib1g-dev libpng-dev libpng16-16)
die() { echo "prepare_device_carry: error: $*" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
bytes_of() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

cd "$ROOT"
for d in .devdeps .devdata; do
  git check-ignore -q "$d/x" || die "$d is not git-ignored: add '/$d/' to .gitignore first"
done

# 1. the .debs
if ((SKIP_DEBS)) && [[ -f $DEVDEPS/env_on_device.sh ]]; then
  echo "prepare_device_carry: keeping $DEVDEPS ($(mib "$(bytes_of "$DEVDEPS")") MiB)"
else
  [[ -f $SHARED_DEVICE/fetch_debs.sh ]] || die "no $SHARED_DEVICE/fetch_debs.sh (set SHARED_DEVICE)"
  DEVKIT_EXTRA_PKGS="${PKGS_EXTRA[*]}" bash "$SHARED_DEVICE/fetch_debs.sh" "$DEVDEPS"
fi

# 2. the data
if [[ ! -f $FASHION_MNIST_SRC/train-images-idx3-ubyte.gz ]]; then
  FASHION_MNIST_SRC=$DEVDATA/fashion-mnist-src
  bash data_pipeline/fetch_data.sh fashion-mnist "$FASHION_MNIST_SRC"
fi
rm -rf "$DEVDATA/fashion-mnist" "$DEVDATA/cuda-include"
mkdir -p "$DEVDATA/fashion-mnist" "$DEVDATA/cuda-include"

# 3. the header fallback
cp "$CUDA_HOME"/include/cudnn*.h "$CUDA_HOME"/include/nccl.h "$DEVDATA/cuda-include/" ||
  die "no cuDNN/NCCL headers in $CUDA_HOME/include (set CUDA_HOME)"

tree=$(git ls-files -z -co --exclude-standard | xargs -0 du -cb 2>/dev/null | awk 'END {print $1}')
fixed=$((tree + $(bytes_of "$DEVDEPS" "$DEVDATA/cuda-include")))
full=$(bytes_of "$FASHION_MNIST_SRC"/*-ubyte.gz)
if ((!SUBSET && fixed + full <= CARRY_LIMIT_MIB * 1048576)); then
  cp "$FASHION_MNIST_SRC"/*-ubyte.gz "$DEVDATA/fashion-mnist/"
  what="all of Fashion-MNIST (60,000 + 10,000)"
else
  python3 tests/gpu/idx_subset.py "$FASHION_MNIST_SRC" "$DEVDATA/fashion-mnist" --train "$DEVICE_SUBSET_TRAIN"
  what="a subset of Fashion-MNIST ($DEVICE_SUBSET_TRAIN train + 10,000 test)"
fi
(cd "$DEVDATA/fashion-mnist" && sha256sum ./*.gz >SHA256SUMS)

total=$((tree + $(bytes_of "$DEVDEPS" "$DEVDATA")))
echo "prepare_device_carry: .devdata holds $what"
echo "  working tree $(mib "$tree") MiB + .devdeps $(mib "$(bytes_of "$DEVDEPS")") MiB" \
  "+ .devdata $(mib "$(bytes_of "$DEVDATA")") MiB = $(mib "$total") MiB (limit 64)"
((total <= 64 * 1048576)) || die "too much to carry: run again with --subset"
echo "device call: run(command='bash tests/gpu/run_on_device.sh', carry=['.devdeps', '.devdata'], timeout_s=560)"
