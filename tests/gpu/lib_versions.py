#!/usr/bin/env python3
"""Prints the runtime versions of the CUDA libraries this process would load (ctypes, no GPU
needed): CUDA runtime and driver API, cuDNN, NCCL, cuBLAS, each with the file it came from.
Candidates: $CUDNN_LIBRARY / $NCCL_LIBRARY (as tests/gpu/run_on_device.sh exports them), then the
sonames through LD_LIBRARY_PATH and ldconfig. Exit 1 when any library is missing."""
import ctypes
import os
import sys


def load(candidates):
    for name in candidates:
        if not name:
            continue
        try:
            return ctypes.CDLL(name), name
        except OSError:
            continue
    return None, None


def path_of(soname_part):
    # The file a loaded library came from, read off this process's memory map.
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if soname_part in os.path.basename(p):
                return p
    return "?"


def int_out(fn, *args):
    v = ctypes.c_int(0)
    rc = fn(*args, ctypes.byref(v))
    return v.value if rc == 0 else f"error {rc}"


def main():
    missing = 0
    cudart, _ = load(["libcudart.so.13", "libcudart.so.12", "libcudart.so"])
    if cudart:
        print(f"CUDA runtime: {int_out(cudart.cudaRuntimeGetVersion)}  driver API: "
              f"{int_out(cudart.cudaDriverGetVersion)}  ({path_of('libcudart.so')})")
    else:
        print("CUDA runtime: libcudart not found")
        missing += 1
    cudnn, _ = load([os.environ.get("CUDNN_LIBRARY"), "libcudnn.so.9", "libcudnn.so"])
    if cudnn:
        cudnn.cudnnGetVersion.restype = ctypes.c_size_t
        cudnn.cudnnGetCudartVersion.restype = ctypes.c_size_t
        print(f"cuDNN: {cudnn.cudnnGetVersion()} (built for cudart {cudnn.cudnnGetCudartVersion()})  "
              f"({path_of('libcudnn.so')})")
    else:
        print("cuDNN: libcudnn not found")
        missing += 1
    nccl, _ = load([os.environ.get("NCCL_LIBRARY"), "libnccl.so.2", "libnccl.so"])
    if nccl:
        print(f"NCCL: {int_out(nccl.ncclGetVersion)}  ({path_of('libnccl.so')})")
    else:
        print("NCCL: libnccl not found")
        missing += 1
    cublas, _ = load(["libcublas.so.13", "libcublas.so.12", "libcublas.so"])
    if cublas:
        parts = [int_out(cublas.cublasGetProperty, k) for k in (0, 1, 2)]  # MAJOR, MINOR, PATCH
        print(f"cuBLAS: {'.'.join(str(p) for p in parts)}  ({path_of('libcublas.so')})")
    else:
        print("cuBLAS: libcublas not found")
        missing += 1
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
