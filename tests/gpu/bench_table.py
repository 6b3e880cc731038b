#!/usr/bin/env python3
"""The benchmark table of tests/gpu/run_on_device.sh: mnist_dist's engine (bench_gpu_epoch) and
PyTorch eager (torch_gpu_bench.py), both with the train set resident on the GPU, and mnist_dist's
trainer (loader, staging, SyncBN and all) on the same GPU, side by side per batch size.
Standard library only; missing inputs give "n/a" cells.

usage: bench_table.py --logs DIR --runs DIR --batches "128 2048" [--gpu NAME] [--out FILE]
  DIR/bench-ours-bB.log, DIR/bench-torch-bB.log: one JSON object per epoch (seconds, rate, samples)
  RUNS/trainer-bB/metrics.jsonl: the trainer's epoch records (seconds, samples_per_second)
"""
import argparse
import datetime
import json
import os
import statistics


def json_lines(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return rows


def steady(epochs, secs_key, rate_key):
    """(median seconds, median rate, first-epoch seconds, n) over the epochs after the first."""
    if not epochs:
        return None
    later = epochs[1:] or epochs
    return (statistics.median(e[secs_key] for e in later), statistics.median(e[rate_key] for e in later),
            epochs[0][secs_key], len(epochs))


def cell(s):
    if s is None:
        return "n/a", "n/a"
    return f"{s[0]:.3f} (1st {s[2]:.3f})", f"{s[1]:,.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--batches", required=True)
    ap.add_argument("--gpu", default="?")
    ap.add_argument("--out")
    a = ap.parse_args()
    lines = [f"## Seed net on one GPU ({a.gpu}), {datetime.date.today()}: epoch time and samples/s",
             "",
             "Engine and PyTorch: 60,000 training images resident on the GPU, contiguous batches of a",
             "once-shuffled order, TF32 on, the median of the epochs after the first (the first in",
             "brackets). Trainer: `mnist_dist --device cuda` on the 42,000-image train split (loader,",
             "host-to-device staging and SyncBN included), from its metrics.jsonl epoch records.",
             "",
             "| batch | mnist_dist engine s/epoch | samples/s | PyTorch eager s/epoch | samples/s "
             "| engine vs PyTorch | trainer s/epoch | trainer samples/s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for b in a.batches.split():
        ours = steady(json_lines(os.path.join(a.logs, f"bench-ours-b{b}.log")), "seconds", "rate")
        torch = steady(json_lines(os.path.join(a.logs, f"bench-torch-b{b}.log")), "seconds", "rate")
        recs = [r for r in json_lines(os.path.join(a.runs, f"trainer-b{b}", "metrics.jsonl"))
                if r.get("kind") == "epoch"]
        trainer = steady(recs, "seconds", "samples_per_second")
        ratio = f"{ours[1] / torch[1]:.2f}x" if ours and torch else "n/a"
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            b, *cell(ours), *cell(torch), ratio, *cell(trainer)))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
