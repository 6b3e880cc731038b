#!/usr/bin/python3
"""compare_weights.py REF.h5 OTHER.h5 [--steps T] [--lr LR] [--tol TOL] [--expect-differ]

Compares two saved models (mnist_dist --save) with the bound of tests/mpi/test_equivalence.cpp:
every tensor's relative L2 difference sqrt(sum d^2 / sum ref^2) <= TOL (default 1e-5), except
 - convolution biases: each feeds a BatchNorm, their true gradient is zero and their values after
   T Adam steps are rounding noise amplified to steps of ~lr: not compared;
 - BatchNorm running means, which inherit that noise: max |d| <= (1 - 0.99^T) * 2 * lr * T.
Prints one line per tensor and a summary line "worst relative L2 X (tensor)". Exit 0 when within
the bound, 1 when not; with --expect-differ the other way round (worst relative L2 > 1e-3), for the
negative controls that show the comparison can fail.
"""
import argparse
import math
import sys

import h5py
import numpy as np


def tensors(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, np.asarray(o[()], dtype=np.float64))
                     if isinstance(o, h5py.Dataset) else None)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref")
    ap.add_argument("other")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--expect-differ", action="store_true")
    a = ap.parse_args()
    ref, other = tensors(a.ref), tensors(a.other)
    if sorted(ref) != sorted(other):
        print(f"compare_weights.py: the files hold different tensors: {sorted(set(ref) ^ set(other))}")
        return 2
    mean_bound = (1.0 - 0.99 ** a.steps) * 2.0 * a.lr * a.steps
    ok, worst, where = True, 0.0, ""
    for name in sorted(ref):
        r, o = ref[name], other[name]
        if r.shape != o.shape:
            print(f"{name}: shapes differ {r.shape} vs {o.shape}")
            return 2
        if name.startswith("conv") and name.endswith("/bias"):
            print(f"{name}: not compared (feeds a BatchNorm: rounding noise)")
            continue
        if name.endswith("/running_mean"):
            m = float(np.max(np.abs(o - r))) if r.size else 0.0
            print(f"{name}: max |difference| {m:.2e} (bound {mean_bound:.2e})")
            ok &= m <= mean_bound
            continue
        d, n = float(np.sum((o - r) ** 2)), float(np.sum(r ** 2))
        rel = math.sqrt(d / n) if n > 0 else math.sqrt(d)
        print(f"{name}: relative L2 {rel:.2e}")
        if rel > worst:
            worst, where = rel, name
        ok &= rel <= a.tol
    print(f"worst relative L2 {worst:.2e} ({where}); bound {a.tol:.0e}")
    if a.expect_differ:
        return 0 if worst > 1e-3 else 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
