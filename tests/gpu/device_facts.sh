#!/usr/bin/env bash
# device_facts.sh — what the machine is, for the first lines of the device check's results: GPU
# (nvidia-smi, full and as a query), driver, OS, compilers, CMake/ninja, the image's Python and
# PyTorch, and the cuDNN/NCCL/cuBLAS versions the loader would pick (lib_versions.py). Each probe
# may fail (no GPU, tool missing): it says so and the rest go on. Exit 0 always.
# usage: device_facts.sh [MNIST_DIST_BINARY]   (also prints its ldd)
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { echo "usage: $0 [MNIST_DIST_BINARY]"; exit 0; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

probe() {  # probe TITLE CMD...: the command's output, or why there is none
  echo "== $1"
  shift
  if ! command -v "$1" >/dev/null 2>&1; then echo "(not found: $1)"; return 0; fi
  "$@" 2>&1 || echo "(exit $? from: $*)"
}

probe "nvidia-smi --query-gpu" nvidia-smi \
  --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm,power.limit,pci.bus_id \
  --format=csv
probe "nvidia-smi" nvidia-smi
probe "uname" uname -a
echo "== os-release"; grep -E '^(PRETTY_NAME|VERSION_ID)=' /etc/os-release 2>&1 || true
echo "== cpus: $(nproc), memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
probe "nvcc" nvcc --version
probe "g++" g++ --version
probe "cmake ($(command -v cmake || echo none))" cmake --version
probe "ninja" ninja --version
probe "compute-sanitizer" compute-sanitizer --version
probe "mpiexec" mpiexec --version
echo "== python3: $(command -v python3 || echo none)"
python3 -c 'import sys; print(sys.version.split()[0])' 2>&1 || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn",
      torch.backends.cudnn.version(), "gpu", torch.cuda.is_available())' 2>&1 | tail -n 1 || true
echo "== runtime libraries (lib_versions.py)"
python3 "$HERE/lib_versions.py" 2>&1 || echo "(some libraries missing)"
echo "== LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
if [[ -n ${1:-} ]]; then
  echo "== ldd $1"
  ldd "$1" 2>&1 || echo "(ldd failed)"
fi
exit 0
