#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (DESIGN.md; issue 4 item 6): unpack the carried
# dependencies, configure for sm_90, build, run the GPU tests and the unit tests, then benchmark
# the seed net — mnist_dist --device cuda against PyTorch eager on the same GPU, in the same
# run — and print a short table last. Everything is logged under $OUT. Budget: about 4 minutes
# on the 16-core H200 machine (build ~1.5, tests ~0.5, benchmark ~1.5).
#
# Once, on a Debian 12 machine, in the checkout's root (the extra packages are the engine's
# build dependencies that the GPU image lacks; ~30 MiB in all, git-ignored):
#   DEVKIT_EXTRA_PKGS="libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0 \
#     nlohmann-json3-dev libcli11-dev libssl-dev zlib1g-dev" \
#     bash ../shared/device/fetch_debs.sh .devdeps
# Device call (tool `run`, carry [".devdeps"] plus the IDX folder if one is given):
#   bash tests/gpu/run_on_device.sh [IDX_DIR]
# IDX_DIR: the four MNIST-format IDX files (.gz or not); without it, 60,000 + 10,000 synthetic
# 28×28 images are made on the device (throughput does not depend on the pixels).
# Knobs: OUT (logs; default out/device), BUILD_DIR (default build-device), DEVDEPS (.devdeps),
#        BENCH_BATCHES ("128 512 2048"), BENCH_EPOCHS (2: the last epoch is the steady state),
#        TORCH_PYTHON (python3 with torch, else /opt/torch/.venv/bin/python3), JOBS (nproc),
#        BUILD_TIMEOUT (seconds, 420).
set -euo pipefail

usage() { echo "usage: $0 [IDX_DIR]   (see the header of this script)"; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
(($# <= 1)) || { usage >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$ROOT/out/device}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-device}
DEVDEPS=${DEVDEPS:-$ROOT/.devdeps}
BENCH_BATCHES=${BENCH_BATCHES:-128 512 2048}
BENCH_EPOCHS=${BENCH_EPOCHS:-2}
JOBS=${JOBS:-$(nproc)}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-420}
IDX_DIR=${1:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/md-device.XXXXXX")
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
T0=$SECONDS

say() { echo "[$((SECONDS - T0))s] $*" | tee -a "$SUMMARY"; }
die() { say "FATAL: $*"; cat "$SUMMARY"; exit 1; }
# step NAME TIMEOUT CMD...: runs CMD with output in $OUT/NAME.log; records ok/FAILED; never exits.
step() {
  local name=$1 limit=$2 rc=0 t=$SECONDS
  shift 2
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  if ((rc == 0)); then say "ok      $name ($((SECONDS - t))s)"; else say "FAILED  $name (exit $rc, $((SECONDS - t))s; see $name.log)"; fi
  return $rc
}

# ---- 1. the machine and the carried dependencies -----------------------------------------------
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || true
  nvcc --version 2>&1 | tail -1 || true
  cmake --version | head -1
  g++ --version | head -1
} >"$OUT/machine.log" 2>&1
GPU_NAME=$( { nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || true; } | sed -n 1p)
say "GPU: ${GPU_NAME:-none visible to nvidia-smi}"
[[ -f $DEVDEPS/env_on_device.sh ]] || die "no $DEVDEPS/env_on_device.sh: run fetch_debs.sh (see this script's header) and carry .devdeps"
# shellcheck disable=SC1091
source "$DEVDEPS/env_on_device.sh" "$DEVDEPS" 2>"$OUT/devkit.log" || die "env_on_device.sh failed (devkit.log)"

# Build dependencies carried as .debs beyond the devkit's own: header-only packages through
# CMAKE_PREFIX_PATH; OpenBLAS from its Debian subfolder; zlib/OpenSSL headers with the image's
# own runtime libraries (Debian's -dev links point at Debian's absolute paths).
P=${DEVKIT_PREFIX:-/opt/deps}
PI=$P/usr/include
PL=$P/usr/lib/x86_64-linux-gnu
extra=(-DCMAKE_BUILD_TYPE=Release -DMNIST_DIST_CUDA=ON)
# The image's own copy of a library (its path), read to the end (no SIGPIPE under pipefail).
sys_lib() { { ldconfig -p 2>/dev/null || true; } | awk -v n="$1" '$1 == n && /x86-64/ && !f {print $NF; f = 1}'; }
export CMAKE_PREFIX_PATH=$P/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
if [[ -e $PL/openblas-pthread/libopenblas.so ]]; then
  export LD_LIBRARY_PATH=$PL/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  extra+=(-DCBLAS_INCLUDE_DIR="$PI/x86_64-linux-gnu/openblas-pthread")
fi
if [[ ! -e /usr/include/zlib.h && -e $PI/zlib.h && -n $(sys_lib libz.so.1) ]]; then
  extra+=(-DZLIB_INCLUDE_DIR="$PI" -DZLIB_LIBRARY="$(sys_lib libz.so.1)")
fi
if [[ ! -e /usr/include/openssl/evp.h && -e $PI/openssl/evp.h && -n $(sys_lib libcrypto.so.3) ]]; then
  extra+=(-DOPENSSL_INCLUDE_DIR="$PI" -DOPENSSL_CRYPTO_LIBRARY="$(sys_lib libcrypto.so.3)"
          -DCMAKE_CXX_FLAGS="-isystem $PI/x86_64-linux-gnu")
fi

# ---- 2. configure and build for sm_90 ---------------------------------------------------------
# shellcheck disable=SC2086  # DEVKIT_CMAKE_ARGS is a list of -D options
step configure 180 cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja ${DEVKIT_CMAKE_ARGS:-} "${extra[@]}" \
  -DCMAKE_CUDA_ARCHITECTURES="${DEVKIT_CUDA_ARCH:-90}" ||
  die "configure failed: $(grep -m3 -i 'error' "$OUT/configure.log" || tail -3 "$OUT/configure.log")"
step build "$BUILD_TIMEOUT" cmake --build "$BUILD_DIR" -j "$JOBS" || die "build failed: $(grep -m3 'error' "$OUT/build.log")"

# ---- 3. tests: GPU (must pass, none skipped), then the unit tests -----------------------------
gpu_ok=1
step ctest-gpu 240 ctest --test-dir "$BUILD_DIR" -L gpu -V || gpu_ok=0  # -V: skip reasons too
skipped=$(grep -c '(Skipped)' "$OUT/ctest-gpu.log" || true)
if ((skipped > 0)); then
  gpu_ok=0
  say "FAILED  $skipped GPU test(s) skipped on the GPU machine: $(grep -m1 -o 'no usable GPU.*' "$OUT/ctest-gpu.log" || true)"
fi
say "GPU tests: $(grep -E 'tests passed|tests failed' "$OUT/ctest-gpu.log" | tail -1)"
step ctest-unit 240 ctest --test-dir "$BUILD_DIR" -L unit -j "$JOBS" --output-on-failure || true
say "unit tests: $(grep -E 'tests passed|tests failed' "$OUT/ctest-unit.log" | tail -1)"

# ---- 4. benchmark: data, mnist_dist, PyTorch --------------------------------------------------
TORCH_PYTHON=${TORCH_PYTHON:-}
if [[ -z $TORCH_PYTHON ]]; then
  for py in python3 /opt/torch/.venv/bin/python3; do
    if "$py" -c "import torch, numpy" 2>/dev/null; then TORCH_PYTHON=$py; break; fi
  done
fi
if [[ -z $IDX_DIR ]]; then
  IDX_DIR=$WORK/idx
  step synth-data 120 python3 - "$IDX_DIR" <<'PY' || die "could not make synthetic data"
import os, random, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(1)
sparse = bytes(0 if v < 204 else v for v in range(256))  # ~20 % lit pixels
def write(name, dims, payload):
    with open(os.path.join(out, name), "wb") as f:
        f.write(((0x08 << 8) | len(dims)).to_bytes(4, "big"))
        for d in dims:
            f.write(d.to_bytes(4, "big"))
        f.write(payload)
for prefix, n in (("train", 60000), ("t10k", 10000)):
    write(f"{prefix}-images-idx3-ubyte", (n, 28, 28), rng.randbytes(n * 784).translate(sparse))
    write(f"{prefix}-labels-idx1-ubyte", (n,), bytes(b % 10 for b in rng.randbytes(n)))
PY
fi
DATA=$WORK/data
step prepare 120 "$BUILD_DIR/mnist_prepare" --idx-dir "$IDX_DIR" --out "$DATA" || die "mnist_prepare failed"

for b in $BENCH_BATCHES; do
  step "bench-mnist_dist-b$b" 120 "$BUILD_DIR/mnist_dist" --device cuda --data "$DATA" \
    --epochs "$BENCH_EPOCHS" --batch-size "$b" --progress lines --log-every 1000000 \
    --run-dir "$WORK/runs/b$b" || true
  if [[ -n $TORCH_PYTHON ]]; then
    step "bench-torch-b$b" 120 "$TORCH_PYTHON" "$ROOT/tests/gpu/torch_gpu_bench.py" "$IDX_DIR" \
      --batch-size "$b" --epochs "$BENCH_EPOCHS" || true
  fi
done
[[ -n $TORCH_PYTHON ]] || say "no Python with torch found: PyTorch column empty"

# ---- 5. the table (last) ------------------------------------------------------------------------
say "done in $((SECONDS - T0))s; logs in $OUT"
python3 - "$OUT" "$BENCH_BATCHES" "$gpu_ok" "$(date -u +%Y-%m-%d)" "${GPU_NAME:-?}" <<'PY' | tee "$OUT/bench_table.md"
import glob, json, os, re, sys
out, batches, gpu_ok, date, gpu = sys.argv[1], sys.argv[2].split(), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
epoch_re = re.compile(r"^Epoch (\d+)/(\d+) - ([\d.]+)s - (\d+) samples/s")
def ours(b):
    rows = []
    try:
        for line in open(os.path.join(out, f"bench-mnist_dist-b{b}.log")):
            m = epoch_re.match(line)
            if m:
                rows.append((float(m.group(3)), float(m.group(4))))
    except OSError:
        pass
    return rows
def torch(b):
    rows = []
    try:
        for line in open(os.path.join(out, f"bench-torch-b{b}.log")):
            if line.startswith("{"):
                j = json.loads(line)
                rows.append((j["seconds"], j["rate"]))
    except OSError:
        pass
    return rows
print(f"\n## seed net, one GPU ({gpu}), {date}: mnist_dist --device cuda vs PyTorch eager (TF32 on in both)")
print("samples/s of the last epoch (steady state; the first in brackets); 60k-epoch = 60000 / rate\n")
print("| batch | mnist_dist samples/s | 60k-epoch s | PyTorch samples/s | 60k-epoch s | ratio |")
print("|------:|---------------------:|------------:|------------------:|------------:|------:|")
for b in batches:
    o, t = ours(b), torch(b)
    def cell(rows):
        if not rows:
            return "n/a", "n/a", None
        rate = rows[-1][1]
        return f"{rate:,.0f} ({rows[0][1]:,.0f})", f"{60000 / rate:.3f}", rate
    os_, oe, orate = cell(o)
    ts, te, trate = cell(t)
    ratio = f"{orate / trate:.2f}x" if orate and trate else "n/a"
    print(f"| {b} | {os_} | {oe} | {ts} | {te} | {ratio} |")
print(f"\nGPU tests: {'passed' if gpu_ok else 'FAILED or skipped (see ctest-gpu.log)'}")
PY
rm -rf "$WORK"
