#!/usr/bin/python3
"""Regularisation recipes, ours and PyTorch with the same settings: Fashion-MNIST (or any
prepared data), seed net, 20 epochs, test accuracy of each recipe against each side's baseline,
averaged over the seeds run (--seeds; each seed sets the initial weights, shuffles, masks and shifts).
PyTorch runs tests/bench/torch_seednet.py, whose options mean what mnist_dist's flags mean.
Results are kept in a JSON file (--json) as they come, so that a run can be continued or
reported later (--report).

usage: recipes.py --mnist-dist PATH --data DIR [--recipes a,b,...] [--sides ours,torch]
                  [--seeds 1,2,...] [--epochs 20] [--threads 2] [--json FILE] [--out FILE.md]
                  [--report]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH = ["/usr/bin/python3", os.path.join(HERE, "torch_seednet.py")]

# name -> (flags, what it is)
RECIPES = {
    "baseline": ([], "the reference program's settings"),
    "early-stopping": (["--early-stopping", "3"], "early stopping, patience 3 on val_loss, best weights restored"),
    "dropout": (["--dropout", "0.3"], "dropout 0.3 after the hidden dense layers"),
    "shift": (["--augment", "shift:2"], "random shifts of up to 2 pixels"),
    "adamw": (["--optimizer", "adamw", "--weight-decay", "0.05"], "AdamW, weight decay 0.05"),
    "dropout+shift": (["--dropout", "0.3", "--augment", "shift:2"], "dropout 0.3 and shifts of up to 2 pixels"),
    "dropout+shift+es": (["--dropout", "0.3", "--augment", "shift:2", "--early-stopping", "3", "--monitor",
                          "val_accuracy"], "dropout 0.3, shifts of up to 2 pixels, early stopping on val_accuracy"),
}
TEST_RE = re.compile(r"Test accuracy: ([0-9.]+)")
EPOCH_RE = re.compile(r"^Epoch (\d+)/", re.M)


def run(cmd):
    t0 = time.time()
    p = subprocess.run(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    m = TEST_RE.search(p.stdout)
    if p.returncode != 0 or not m:
        raise SystemExit(f"recipes.py: {' '.join(cmd)} failed (exit {p.returncode}):\n{p.stdout[-3000:]}")
    epochs = max(int(e) for e in EPOCH_RE.findall(p.stdout))
    best = re.search(r"(?:weights of epoch|best epoch) (\d+)", p.stdout)
    return {"test_accuracy": float(m.group(1)), "epochs_run": epochs, "seconds": time.time() - t0,
            "weights_epoch": int(best.group(1)) if best else epochs}


def by_seed(entry):
    """A recipe's results by seed; an entry of one run (older JSON files) is seed 1's."""
    if not entry:
        return {}
    return {"1": entry} if "test_accuracy" in entry else entry


def mean(xs):
    return sum(xs) / len(xs)


def report(res, epochs):
    rows = ["| recipe | ours: test accuracy (mean; per seed) | vs our baseline, same seeds | "
            "PyTorch: test accuracy (mean; per seed) | vs its baseline, same seeds |",
            "| --- | ---: | ---: | ---: | ---: |"]
    base = {s: by_seed(res.get(s, {}).get("baseline")) for s in ("ours", "torch")}

    def cell(side, name):
        runs = by_seed(res.get(side, {}).get(name))
        if not runs:
            return "–", "–"
        acc = mean([r["test_accuracy"] for r in runs.values()])
        parts = []
        for seed in sorted(runs, key=int):
            r = runs[seed]
            note = f" (epoch {r['weights_epoch']} of {r['epochs_run']})" if r["weights_epoch"] != epochs else ""
            parts.append(f"{r['test_accuracy']:.2%}{note}")
        text = f"{acc:.2%}" + (f" ({len(runs)} seeds: " + ", ".join(parts) + ")" if len(runs) > 1 else
                               parts[0][len(f"{acc:.2%}"):])
        # Against the baseline over the same seeds (paired), so that one seed is not set against a mean.
        paired = [seed for seed in runs if seed in base[side]]
        delta = ""
        if paired and name != "baseline":
            d = mean([runs[k]["test_accuracy"] - base[side][k]["test_accuracy"] for k in paired])
            delta = f"{d * 100:+.2f} points" + (f" ({len(paired)} seeds)" if len(paired) > 1 else "")
        return text, delta

    for name, (_, what) in RECIPES.items():
        if not any(name in res.get(s, {}) for s in ("ours", "torch")):
            continue
        (oa, od), (ta, td) = cell("ours", name), cell("torch", name)
        rows.append(f"| {name}: {what} | {oa} | {od} | {ta} | {td} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist-dist", default="")
    ap.add_argument("--data", default="")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--sides", default="ours,torch")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--report", action="store_true", help="only report what --json holds")
    a = ap.parse_args()
    res = {}
    if a.json and os.path.exists(a.json):
        with open(a.json) as f:
            res = json.load(f)
    if not a.report:
        for name in a.recipes.split(","):
            if name not in RECIPES:
                raise SystemExit(f"recipes.py: unknown recipe '{name}' (known: {', '.join(RECIPES)})")
            flags = RECIPES[name][0]
            for seed in a.seeds.split(","):
                for side in a.sides.split(","):
                    if side == "ours":
                        cmd = [a.mnist_dist, "--data", a.data, "--epochs", str(a.epochs), "--threads", str(a.threads),
                               "--device", "cpu", "--seed", seed, "--progress", "lines", "--log-every", "1000",
                               "--run-dir", f"/tmp/md_recipes/{name}-{seed}"] + flags
                    else:
                        cmd = TORCH + [a.data, "--epochs", str(a.epochs), "--threads", str(a.threads),
                                       "--seed", seed] + flags
                    r = run(cmd)
                    print(f"{side} {name} seed {seed}: test accuracy {r['test_accuracy']:.4f} ({r['epochs_run']} "
                          f"epochs, weights of epoch {r['weights_epoch']}, {r['seconds']:.0f} s)", flush=True)
                    entry = by_seed(res.setdefault(side, {}).get(name))
                    entry[seed] = r
                    res[side][name] = entry
                    if a.json:
                        with open(a.json, "w") as f:
                            json.dump(res, f, indent=1)
    text = report(res, a.epochs)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
