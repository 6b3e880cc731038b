#!/usr/bin/env bash
# single_gpu.sh: one mnist_dist process, no MPI launcher, with --device auto: on one GPU when this
# build has CUDA and a GPU is usable, else on the CPU with a note saying so. The GPU is the first
# visible one: choose it with CUDA_VISIBLE_DEVICES=2 launch/single_gpu.sh …
# Flags you pass win (--device cuda fails loudly without a GPU; --device cpu forces the CPU); the
# command is printed before it runs.
# Usage: launch/single_gpu.sh [--dry-run] [mnist_dist args...]
#   e.g. launch/single_gpu.sh --data data/mnist --epochs 20 --save model.h5
# Environment: MNIST_DIST (default build/mnist_dist).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MNIST_DIST="${MNIST_DIST:-$root/build/mnist_dist}"
PROG=single_gpu.sh

say() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $1" >&2; exit 2; }

dry=0; args=()
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
  esac
done
[[ -x "$MNIST_DIST" ]] || die "$MNIST_DIST is not an executable (build first: launch/setup.sh, or set MNIST_DIST)"

has() { local f="$1" a; for a in "${args[@]}"; do [[ "$a" == "$f" || "$a" == "$f="* ]] && return 0; done; return 1; }

# --device auto: the first usable GPU, else the CPU with a note from mnist_dist ("no usable GPU
# …; training on the CPU"). mnist_dist decides: it asks CUDA itself, which nvidia-smi cannot
# replace (a driver too old for the toolkit lists GPUs that CUDA cannot use).
has --device || args+=(--device auto)

# Run as a plain single process even inside an mpirun/srun environment (mnist_dist would
# otherwise join the MPI job that these variables describe).
unset OMPI_COMM_WORLD_SIZE OMPI_COMM_WORLD_RANK PMIX_RANK PMI_RANK PMI_SIZE
cmd=("$MNIST_DIST" "${args[@]}")
say "${cmd[*]}"
((dry)) && exit 0
exec "${cmd[@]}"
