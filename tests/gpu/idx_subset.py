#!/usr/bin/env python3
"""Writes the first N train and M test samples of an MNIST-format IDX folder (the four standard
files, .gz or not) as gzip-compressed IDX files into DEST (gzip -n style: no name, mtime 0, so the
output is byte-reproducible). Standard library only.

usage: idx_subset.py SRC_DIR DEST_DIR [--train N] [--test M]   (0 = all samples)
"""
import argparse
import gzip
import os
import sys

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read(src, base):
    for name, opener in ((base, open), (base + ".gz", gzip.open)):
        path = os.path.join(src, name)
        if os.path.exists(path):
            with opener(path, "rb") as f:
                return f.read()
    sys.exit(f"idx_subset: no {base}[.gz] in {src}")


def head(data, n):
    # IDX: magic 0x0000 08 ndim, ndim big-endian uint32 dims, then uint8 payload.
    if data[:3] != b"\0\0\x08":
        sys.exit("idx_subset: not a uint8 IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    per = 1
    for d in dims[1:]:
        per *= d
    n = dims[0] if n == 0 else min(n, dims[0])
    out = bytearray(data[:4]) + n.to_bytes(4, "big") + data[8:4 + 4 * ndim]
    body = 4 + 4 * ndim
    return bytes(out) + data[body:body + n * per], n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dest")
    ap.add_argument("--train", type=int, default=0)
    ap.add_argument("--test", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.dest, exist_ok=True)
    for split, n in (("train", a.train), ("test", a.test)):
        for base in FILES[split]:
            data, kept = head(read(a.src, base), n)
            tmp = os.path.join(a.dest, base + ".gz.tmp")
            with open(tmp, "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as f:
                    f.write(data)
            os.replace(tmp, os.path.join(a.dest, base + ".gz"))
        print(f"{split}: {kept} samples")


if __name__ == "__main__":
    main()
