#!/usr/bin/python3
"""Regularisation recipes, ours and PyTorch with the same settings: Fashion-MNIST (or any
prepared data), seed net, 20 epochs, test accuracy of each recipe against each side's baseline.
PyTorch runs tests/bench/torch_seednet.py, whose options mean what mnist_dist's flags mean.
Results are kept in a JSON file (--json) as they come, so that a run can be continued or
reported later (--report).

usage: recipes.py --mnist-dist PATH --data DIR [--recipes a,b,...] [--sides ours,torch]
                  [--epochs 20] [--threads 2] [--json FILE] [--out FILE.md] [--report]
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


def report(res, epochs):
    rows = ["| recipe | ours: test accuracy | vs our baseline | PyTorch: test accuracy | vs its baseline |",
            "| --- | ---: | ---: | ---: | ---: |"]
    base = {s: res.get(s, {}).get("baseline", {}).get("test_accuracy") for s in ("ours", "torch")}

    def cell(side, name):
        r = res.get(side, {}).get(name)
        if not r:
            return "–", "–"
        acc = r["test_accuracy"]
        note = f" (epoch {r['weights_epoch']} of {r['epochs_run']})" if r["weights_epoch"] != epochs else ""
        delta = f"{(acc - base[side]) * 100:+.2f} points" if base[side] is not None and name != "baseline" else ""
        return f"{acc:.2%}{note}", delta

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
            for side in a.sides.split(","):
                if side == "ours":
                    cmd = [a.mnist_dist, "--data", a.data, "--epochs", str(a.epochs), "--threads", str(a.threads),
                           "--device", "cpu", "--progress", "lines", "--log-every", "1000", "--run-dir",
                           f"/tmp/md_recipes/{name}"] + flags
                else:
                    cmd = TORCH + [a.data, "--epochs", str(a.epochs), "--threads", str(a.threads)] + flags
                r = run(cmd)
                print(f"{side} {name}: test accuracy {r['test_accuracy']:.4f} ({r['epochs_run']} epochs, "
                      f"weights of epoch {r['weights_epoch']}, {r['seconds']:.0f} s)", flush=True)
                res.setdefault(side, {})[name] = r
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
