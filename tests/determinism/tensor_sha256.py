#!/usr/bin/python3
"""tensor_sha256.py FILE...: SHA-256 over a model/checkpoint file's tensors (every dataset, in
name order: name, shape, little-endian float32 bytes), independent of HDF5's object headers
and time stamps. Prints 'hash  file' per file."""
import hashlib
import sys

import h5py
import numpy as np


def tensor_hash(path):
    h = hashlib.sha256()
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in sorted(names):
            a = np.asarray(f[n][()])
            h.update(n.encode() + b"\0" + repr(a.shape).encode() + b"\0")
            h.update(a.astype(a.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        print(f"{tensor_hash(p)}  {p}")
