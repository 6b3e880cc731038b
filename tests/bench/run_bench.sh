#!/usr/bin/env bash
# run_bench.sh: mnist_dist vs PyTorch on this machine, one command. Builds mnist_dist and the
# engine benchmark md_bench in Release, installs what PyTorch needs if missing, prepares the data
# (Fashion-MNIST from Debian's dataset-fashion-mnist) unless --data is given, prints which BLAS
# PyTorch uses, then runs one after the other on the same data (bench.py):
#   (a) training step loop, data in memory: seed net and LeNet-5, batch 128, 1 and 2 threads
#   (b) one full epoch including data loading (ours: HDF5 shards; PyTorch: DataLoader over them)
#   (c) 2 ranks x 1 thread (mpirun) vs PyTorch DDP (gloo) 2 processes x 1 thread
#   (d) inference at batch 1000
#   (m) peak resident memory per rank, training and evaluation, over 5 epochs
# and prints a Markdown table (medians of alternating runs, ratios, GFLOP/s vs sgemm).
#
# Usage: tests/bench/run_bench.sh [--data DIR] [--build DIR] [--reps N] [--quick]
#                                 [--sections a,b,c,d,m] [--out FILE.md] [--no-install]
# Environment: IDX_DIR (default /usr/share/datasets/fashion-mnist), JOBS (default nproc).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed for the benchmark commands only.
set -euo pipefail

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=$root/build-bench
DATA=""
REPS=3
QUICK=""
SECTIONS="a,b,c,d,m"
OUT=""
INSTALL=1
IDX_DIR=${IDX_DIR:-/usr/share/datasets/fashion-mnist}
JOBS=${JOBS:-$(nproc)}
PY=/usr/bin/python3   # Debian's python3-torch lives in the system interpreter

while (($#)); do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --build) BUILD_DIR=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --quick) QUICK=--quick; shift ;;
    --sections) SECTIONS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_bench.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }

# ---- 1. what PyTorch needs ---------------------------------------------------------------
say "PyTorch and its BLAS"
need=()
for p in python3-torch python3-h5py libopenblas0-openmp; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  if ((INSTALL == 0)); then
    echo "run_bench.sh: missing packages: ${need[*]} (rerun without --no-install, or apt-get install them)" >&2
    exit 2
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "run_bench.sh: need root or sudo to install: ${need[*]}" >&2; exit 2; }
    sudo=sudo
  fi
  echo "installing: ${need[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" ||
    { $sudo apt-get update && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"; }
fi
# Debian's PyTorch calls whatever libblas.so.3 the alternatives system points at; the
# reference BLAS makes it ~16x slower, so say which one it is.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
echo "libblas.so.3 -> ${blas:-?}"
case "$blas" in
  *openblas*) ;;
  *) echo "run_bench.sh: WARNING: PyTorch would use ${blas:-an unknown BLAS}, not OpenBLAS;" \
          "point libblas.so.3 at OpenBLAS: update-alternatives --set libblas.so.3-x86_64-linux-gnu" \
          "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3" >&2 ;;
esac
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" -c \
  'import torch, h5py; print("torch", torch.__version__, "| h5py", h5py.__version__, "| threads", torch.get_num_threads())'

# ---- 2. build (Release): mnist_dist, mnist_prepare and md_bench ---------------------------
say "build ($BUILD_DIR, Release)"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S "$root/tests/bench" -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DMNIST_DIST_CUDA=OFF >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$JOBS" --target md_bench mnist_dist mnist_prepare
prepare=$BUILD_DIR/mnist_dist/mnist_prepare
[ -x "$prepare" ] || prepare=$BUILD_DIR/mnist_prepare

# ---- 3. data -----------------------------------------------------------------------------
if [ -z "$DATA" ]; then
  DATA=$BUILD_DIR/bench-data
  if [ ! -f "$DATA/manifest.json" ]; then
    say "data: $IDX_DIR -> $DATA"
    if [ ! -f "$IDX_DIR/train-images-idx3-ubyte.gz" ]; then
      tmp_idx=$BUILD_DIR/bench-idx
      "$root/data_pipeline/fetch_data.sh" fashion-mnist "$tmp_idx"
      IDX_DIR=$tmp_idx
    fi
    "$prepare" --idx-dir "$IDX_DIR" --out "$DATA"
  fi
fi
[ -f "$DATA/manifest.json" ] || { echo "run_bench.sh: $DATA has no manifest.json (made by mnist_prepare)" >&2; exit 2; }

# ---- 4. the comparison -------------------------------------------------------------------
say "benchmark (data $DATA)"
args=(--build "$BUILD_DIR" --data "$DATA" --reps "$REPS" --sections "$SECTIONS"
      --log "$BUILD_DIR/bench-log.txt" --json "$BUILD_DIR/bench-results.json")
[ -n "$QUICK" ] && args+=("$QUICK")
[ -n "$OUT" ] && args+=(--markdown "$OUT")
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$root/tests/bench/bench.py" "${args[@]}"
