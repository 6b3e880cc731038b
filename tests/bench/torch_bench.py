#!/usr/bin/python3
"""PyTorch side of the mnist_dist benchmark (tests/bench/run_bench.sh): the same networks as
torch_seednet.py, timed the way bench_step / mnist_dist time ours. Prints one JSON object
per line (rate = samples per second), so the harness can take medians.

usage: torch_bench.py MODE DATA_DIR [options]
  MODE  step    training step loop, data already in memory (contiguous batches of a
                once-shuffled copy of the train split)
        epoch   one full epoch through a DataLoader over the HDF5 shards (--loader: the split
                read whole when the epoch starts, the fastest here; or h5py reads per sample
                or per batch in worker processes)
        ddp     DistributedDataParallel, gloo, --procs processes x --threads threads,
                data in memory, global batch --batch-size split over the processes
                (--rank R: only rank R, the others started on other hosts)
        infer   inference (eval mode, no_grad) at --batch-size over the val split
        blas    which BLAS library this PyTorch calls, and its sgemm rate
"""
import argparse
import bisect
import json
import os
import resource
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_seednet import keras_init, lenet5, load_split, seed_net  # noqa: E402


def build(model_name):
    model = seed_net() if model_name == "seed" else lenet5()
    keras_init(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    return model, opt


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def emit(**kw):
    print(json.dumps(kw), flush=True)


def train_step(model, opt, x, y):
    out = model(x)
    loss = nn.functional.cross_entropy(out, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def mode_step(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, y = load_split(a.data, "train")
    perm = torch.randperm(len(x))
    x, y = x[perm].contiguous(), y[perm].contiguous()
    model, opt = build(a.model)
    model.train()
    nb = len(x) // a.batch_size
    step = 0

    def run(n):
        nonlocal step
        for _ in range(n):
            i = (step % nb) * a.batch_size
            loss = train_step(model, opt, x[i:i + a.batch_size], y[i:i + a.batch_size])
            loss.item()  # what a training loop reads back every step
            step += 1

    run(a.warmup)
    rates = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        run(a.steps)
        rates.append(a.steps * a.batch_size / (time.perf_counter() - t0))
    emit(side="torch", mode="step", model=a.model, threads=a.threads, batch=a.batch_size,
         rates=rates, peak_rss_mib=peak_rss_mib())


class H5Shards(torch.utils.data.Dataset):
    """The train split as one dataset over the HDF5 shards; an item is a list of indices (a
    whole batch, read with one sorted fancy-index read per shard: the usual h5py idiom)."""

    def __init__(self, data_dir, split):
        with open(os.path.join(data_dir, "manifest.json")) as f:
            manifest = json.load(f)
        self.files = [os.path.join(data_dir, s["file"]) for s in manifest["splits"][split]["shards"]]
        self.starts = [s["first_sample"] for s in manifest["splits"][split]["shards"]]
        self.n = manifest["splits"][split]["count"]
        self.handles = None  # opened lazily in each worker process

    def __len__(self):
        return self.n

    def __getitem__(self, indices):
        if self.handles is None:
            self.handles = [h5py.File(f, "r") for f in self.files]
        indices = np.sort(np.asarray(indices))
        xs, ys = [], []
        for k, h in enumerate(self.handles):
            lo = bisect.bisect_left(indices, self.starts[k])
            hi = bisect.bisect_left(indices, self.starts[k + 1]) if k + 1 < len(self.starts) else len(indices)
            if hi > lo:
                local = indices[lo:hi] - self.starts[k]
                xs.append(h["images"][local])
                ys.append(h["labels"][local])
        x = torch.from_numpy(np.concatenate(xs)).float().div_(255.0).unsqueeze(1)
        y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
        return x, y


class H5Items(torch.utils.data.Dataset):
    """The train split over the HDF5 shards, one sample per item (h5py reads in __getitem__),
    batched by the DataLoader: the textbook map-style dataset."""

    def __init__(self, data_dir, split):
        self.inner = H5Shards(data_dir, split)

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        inner = self.inner
        if inner.handles is None:
            inner.handles = [h5py.File(f, "r") for f in inner.files]
        k = bisect.bisect_right(inner.starts, i) - 1
        h = inner.handles[k]
        j = i - inner.starts[k]
        x = torch.from_numpy(h["images"][j]).float().div_(255.0).unsqueeze(0)
        return x, int(h["labels"][j])


class InMemory(torch.utils.data.Dataset):
    """The train split read whole from the HDF5 shards when the epoch starts (inside the timed
    epoch), then indexed in memory: the fastest DataLoader input for data this small."""

    def __init__(self, data_dir, split):
        self.x, self.y = load_split(data_dir, split)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def make_loader(a, epoch_seed):
    g = torch.Generator().manual_seed(epoch_seed)
    if a.loader == "h5batch":
        ds = H5Shards(a.data, "train")
        sampler = torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(ds, generator=g),
                                                a.batch_size, False)
        return torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None, num_workers=a.workers)
    ds = H5Items(a.data, "train") if a.loader == "h5item" else InMemory(a.data, "train")
    return torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, generator=g,
                                       num_workers=a.workers if a.loader == "h5item" else 0)


def mode_epoch(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model, opt = build(a.model)
    model.train()
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        loader = make_loader(a, a.seed + epoch)
        n = 0
        for x, y in loader:
            train_step(model, opt, x, y).item()
            n += len(y)
        dt = time.perf_counter() - t0
        emit(side="torch", mode="epoch", model=a.model, threads=a.threads, batch=a.batch_size,
             epoch=epoch + 1, seconds=dt, rate=n / dt, loader=a.loader, workers=a.workers,
             peak_rss_mib=peak_rss_mib())


def ddp_worker(rank, a, world):
    import torch.distributed as dist
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(a.port))
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(a.seed)
    x, y = load_split(a.data, "train")
    g = torch.Generator().manual_seed(a.seed)
    perm = torch.randperm(len(x), generator=g)
    x, y = x[perm].contiguous(), y[perm].contiguous()
    model, _ = build(a.model)
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    per = a.batch_size // world
    nb = len(x) // a.batch_size
    step = 0

    def run(n):
        nonlocal step
        for _ in range(n):
            i = (step % nb) * a.batch_size + rank * per
            train_step(ddp, opt, x[i:i + per], y[i:i + per]).item()
            step += 1

    run(a.warmup)
    rates = []
    for _ in range(a.reps):
        dist.barrier()
        t0 = time.perf_counter()
        run(a.steps)
        dist.barrier()
        rates.append(a.steps * a.batch_size / (time.perf_counter() - t0))
    rss = torch.tensor([peak_rss_mib()], dtype=torch.float64)
    dist.all_reduce(rss, op=dist.ReduceOp.MAX)
    if rank == 0:
        emit(side="torch", mode="ddp", model=a.model, procs=world, threads=a.threads,
             batch=a.batch_size, rates=rates, peak_rss_mib=float(rss[0]))
    dist.barrier()
    # PyTorch 1.13 can deadlock tearing the gloo process group down under the DDP reducer
    # (a gloo thread waits for the GIL held by the destructor); the results are out, so leave.
    sys.stdout.flush()
    os._exit(0)


def mode_ddp(a):
    if a.rank >= 0:  # one rank of a job started elsewhere (another host): MASTER_ADDR from the environment
        ddp_worker(a.rank, a, a.procs)
        return
    import torch.multiprocessing as mp
    mp.spawn(ddp_worker, args=(a, a.procs), nprocs=a.procs, join=True)


def mode_infer(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, _ = load_split(a.data, "val")
    model, _ = build(a.model)
    model.eval()
    nb = len(x) // a.batch_size
    step = 0

    def run(n):
        nonlocal step
        with torch.no_grad():
            for _ in range(n):
                i = (step % nb) * a.batch_size
                model(x[i:i + a.batch_size]).argmax(1)
                step += 1

    run(a.warmup)
    rates = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        run(a.steps)
        rates.append(a.steps * a.batch_size / (time.perf_counter() - t0))
    emit(side="torch", mode="infer", model=a.model, threads=a.threads, batch=a.batch_size,
         rates=rates, peak_rss_mib=peak_rss_mib())


def mode_blas(a):
    torch.set_num_threads(a.threads)
    n = 2048
    p = torch.randn(n, n)
    q = torch.randn(n, n)
    torch.mm(p, q)
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(p, q)
        best = min(best, time.perf_counter() - t0)
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            base = os.path.basename(path)
            if any(k in base for k in ("blas", "lapack", "mkl", "dnnl", "gomp")):
                libs.add(os.path.realpath(path))
    emit(side="torch", mode="blas", torch=torch.__version__, threads=a.threads,
         libraries=sorted(libs), sgemm_2048_gflops=2.0 * n ** 3 / best / 1e9,
         env={k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                             "OMP_NUM_THREADS")},
         blas_info=[l.strip() for l in torch.__config__.show().splitlines() if "BLAS" in l])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["step", "epoch", "ddp", "infer", "blas"])
    ap.add_argument("data", nargs="?", default="")
    ap.add_argument("--model", default="seed", choices=["seed", "lenet5"])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100, help="timed steps per repetition")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="DataLoader worker processes (epoch)")
    ap.add_argument("--loader", default="memory", choices=["h5item", "h5batch", "memory"],
                    help="epoch input: h5py reads per sample (h5item), per batch (h5batch), or the "
                         "split read whole into memory at the start of the epoch (memory)")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--port", type=int, default=29517)
    ap.add_argument("--rank", type=int, default=-1,
                    help="ddp: run only this rank of --procs (the others on other hosts; "
                         "MASTER_ADDR/MASTER_PORT from the environment); -1: spawn all here")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.mode != "blas" and not a.data:
        ap.error("DATA_DIR is required for mode " + a.mode)
    {"step": mode_step, "epoch": mode_epoch, "ddp": mode_ddp, "infer": mode_infer,
     "blas": mode_blas}[a.mode](a)


if __name__ == "__main__":
    main()
