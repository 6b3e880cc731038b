#!/usr/bin/python3
"""The step-time cost of --deterministic against the default mode, in one run: the same
training (seed net by default, batch 128, Fashion-MNIST or any prepared data) with and without
--deterministic, alternating the order, in each configuration asked for (1 rank x 2 threads and
2 ranks x 1 thread by default). The rate is taken after the first --skip steps (buffers and
shared windows fault in there), from mnist_dist's progress lines. Prints a Markdown table of
samples/s (medians), the ratio of step times deterministic/default per pair and the median.

usage: determinism_cost.py --mnist-dist PATH --data DIR [--steps 200] [--skip 40] [--reps 3]
                           [--configs 1x2,2x1] [--model seed] [--out FILE.md]
"""
import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import run_checked, steady_rate  # noqa: E402


def rate(args, ranks, threads, deterministic, tmp):
    cmd = [args.mnist_dist, "--device", "cpu", "--data", args.data, "--model", args.model, "--epochs", "1",
           "--max-steps", str(args.steps), "--batch-size", "128", "--threads", str(threads),
           "--log-every", str(args.skip), "--run-dir", tempfile.mkdtemp(dir=tmp) + "/r", "--timeout", "300"]
    if deterministic:
        cmd.append("--deterministic")
    env = None
    if ranks > 1:  # launch/run_local.sh: mpirun as the README runs it (binding, root)
        env = dict(os.environ, MNIST_DIST=cmd[0])
        cmd = [os.path.join(HERE, "..", "..", "launch", "run_local.sh"), "-n", str(ranks)] + cmd[1:]
    what = f"{ranks}x{threads} {'deterministic' if deterministic else 'default'}"
    out = run_checked(cmd, what, env=env, prog="determinism_cost.py")
    r = steady_rate(out, 128, args.skip)
    if r is None:
        raise SystemExit(f"determinism_cost.py: no progress line at step {args.skip}:\n{out[-2000:]}")
    print(f"    {r:,.0f} samples/s", flush=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist-dist", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="seed")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--skip", type=int, default=40)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--configs", default="1x2,2x1", help="RANKSxTHREADS, comma-separated")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.steps > 328:
        ap.error("--steps must stay within one epoch of the data's train split (at most 328 of 128 on Fashion-MNIST)")
    tmp = tempfile.mkdtemp(prefix="detcost_")
    lines = [f"Determinism cost, {datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} cores; "
             f"{a.model}, batch 128, {a.steps} steps (rate after step {a.skip}), {a.reps} alternating pairs",
             "", "| ranks x threads | default samples/s | deterministic samples/s | step time ratio (pairs) | median ratio |",
             "|---|---|---|---|---|"]
    try:
        for cfg in a.configs.split(","):
            ranks, threads = (int(v) for v in cfg.split("x"))
            base, det, ratios = [], [], []
            for i in range(a.reps):
                order = [False, True] if i % 2 == 0 else [True, False]
                got = {d: rate(a, ranks, threads, d, tmp) for d in order}
                base.append(got[False])
                det.append(got[True])
                ratios.append(got[False] / got[True])  # step time deterministic / default
            lines.append(f"| {ranks} x {threads} | {statistics.median(base):,.0f} | {statistics.median(det):,.0f} | "
                         f"{', '.join(f'{r:.3f}' for r in ratios)} | **{statistics.median(ratios):.3f}** |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
