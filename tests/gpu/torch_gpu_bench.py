#!/usr/bin/python3
"""The seed net (tests/bench/torch_seednet.py's definition, Keras settings) trained in PyTorch
eager mode on a GPU, timed per epoch, for the side-by-side table of tests/gpu/run_on_device.sh.
Reads the train IDX files (gzip or not) directly — no h5py needed — and keeps the whole train set
resident on the device (PyTorch's best case: no loader), as bench_gpu_epoch does for mnist_dist.
--samples tiles a smaller (carried subset) train set up to that many images. --shuffle once: one
shuffle before the epochs and contiguous batches (what bench_gpu_epoch does); epoch: a randperm
and a gather per epoch (the usual PyTorch loop). Prints one JSON object per epoch.

usage: torch_gpu_bench.py IDX_DIR [--batch-size B] [--epochs N] [--device cuda|cpu]
                          [--tf32 | --no-tf32] [--seed S] [--samples N] [--shuffle once|epoch]
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn



def seed_net(classes=10):
    # Same as torch_seednet.seed_net (imported when h5py is there; repeated here so it is not needed).
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6, eps=1e-3, momentum=0.01), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 12, 5, padding=2), nn.BatchNorm2d(12, eps=1e-3, momentum=0.01), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(588, 1200), nn.ReLU(), nn.Linear(1200, 840), nn.ReLU(), nn.Linear(840, classes))


def keras_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def read_idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as f:
                data = f.read()
            ndim = data[3]
            dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    sys.exit(f"torch_gpu_bench: no {path}[.gz]")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("idx_dir")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=True,
                    help="TF32 tensor cores for fp32 convolutions/GEMMs (mnist_dist's default)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--shuffle", choices=["once", "epoch"], default="epoch")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(a.seed)
    x = torch.from_numpy(read_idx(os.path.join(a.idx_dir, "train-images-idx3-ubyte")).copy())
    y = torch.from_numpy(read_idx(os.path.join(a.idx_dir, "train-labels-idx1-ubyte")).astype(np.int64))
    reps = -(-a.samples // x.shape[0])  # tile a subset up to --samples
    x, y = x.repeat(reps, 1, 1)[:a.samples], y.repeat(reps)[:a.samples]
    x = (x.to(dev).float() / 255.0).unsqueeze(1)
    y = y.to(dev)
    n = x.shape[0]
    if a.shuffle == "once":
        perm = torch.randperm(n, device=dev)
        x, y = x[perm].contiguous(), y[perm].contiguous()
    model = seed_net().to(dev)
    keras_init(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for epoch in range(a.epochs):
        perm = torch.randperm(n, device=dev) if a.shuffle == "epoch" else None
        sync()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=dev)
        for i in range(0, n, a.batch_size):
            if perm is None:
                xb, yb = x[i:i + a.batch_size], y[i:i + a.batch_size]
            else:
                idx = perm[i:i + a.batch_size]
                xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(yb)
        sync()
        dt = time.perf_counter() - t0
        print(json.dumps({"impl": "torch", "device": str(dev), "batch": a.batch_size,
                          "epoch": epoch + 1, "samples": n, "seconds": round(dt, 4),
                          "rate": round(n / dt, 1), "loss": round(loss_sum.item() / n, 4),
                          "torch": torch.__version__, "tf32": a.tf32,
                          "shuffle": a.shuffle}), flush=True)


if __name__ == "__main__":
    main()
