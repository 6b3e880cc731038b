#!/usr/bin/env python3
"""Checks on mnist_dist run directories (their metrics.jsonl, src/report/run_recorder.cpp) for
tests/gpu/run_on_device.sh; standard library only. Exit 0 = check passed, 1 = failed, 2 = the
files are missing or unreadable.

  check_runs.py accuracy RUN_DIR --min X [--what val|test]
      the last epoch record's val_accuracy (or the test record's accuracy) must exceed X
  check_runs.py losses RUN_A RUN_B --tol T [--min-steps K] [--max-step S]
      the step records present in both (same global_step, at most S) must number at least K and
      their losses (running means over the epoch so far) differ by at most T
  check_runs.py steps RUN_DIR
      prints the last global step (for --max-steps after a resume)
  check_runs.py gtest-xml FILE
      a GoogleTest XML report must exist, list tests, and have no failure, error or skip (on the
      GPU machine a skipped GPU test means the GPU was not usable)
"""
import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET


def records(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        print(f"check_runs: cannot read {path}: {e}")
        sys.exit(2)


def accuracy(a):
    recs = records(a.run_dir)
    if a.what == "val":
        epochs = [r for r in recs if r.get("kind") == "epoch" and "val_accuracy" in r]
        if not epochs:
            print(f"check_runs: no epoch record with val_accuracy in {a.run_dir}")
            return 2
        r = epochs[-1]
        value, label = r["val_accuracy"], f"val_accuracy after epoch {r['epoch']}"
    else:
        tests = [r for r in recs if r.get("kind") == "test"]
        if not tests:
            print(f"check_runs: no test record in {a.run_dir}")
            return 2
        value, label = tests[-1]["accuracy"], "test accuracy"
    ok = value > a.min
    print(f"{label}: {value:.4f} ({'>' if ok else 'NOT >'} {a.min}) in {a.run_dir}")
    return 0 if ok else 1


def step_losses(run_dir, max_step):
    out = {}
    for r in records(run_dir):
        if r.get("kind") == "step" and r["global_step"] <= max_step:
            out[r["global_step"]] = r["loss"]
    return out


def losses(a):
    la, lb = step_losses(a.run_a, a.max_step), step_losses(a.run_b, a.max_step)
    common = sorted(set(la) & set(lb))
    if len(common) < a.min_steps:
        print(f"check_runs: {len(common)} common step records (need {a.min_steps}): "
              f"{a.run_a} has {len(la)}, {a.run_b} has {len(lb)}")
        return 1
    diffs = [(abs(la[s] - lb[s]), s) for s in common]
    worst, at = max(diffs)
    print(f"{len(common)} steps compared; max |loss difference| {worst:.3g} at step {at} (tol {a.tol})")
    shown = common[:3] + common[-3:] if len(common) > 6 else common
    for s in dict.fromkeys(shown):
        print(f"  step {s:5d}: {la[s]:.6f} vs {lb[s]:.6f}  (diff {abs(la[s] - lb[s]):.3g})")
    return 0 if worst <= a.tol else 1


def steps(a):
    recs = [r for r in records(a.run_dir) if "global_step" in r]
    if not recs:
        print(f"check_runs: no records in {a.run_dir}")
        return 2
    print(max(r["global_step"] for r in recs))
    return 0


def gtest_xml(a):
    try:
        root = ET.parse(a.file).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"check_runs: no readable GoogleTest XML {a.file}: {e}")
        return 2
    cases = root.findall(".//testcase")
    failed = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None or c.get("result") == "skipped"]
    print(f"{os.path.basename(a.file)}: {len(cases)} tests, {len(failed)} failed, {len(skipped)} skipped")
    for c in failed + skipped:
        what = "FAILED " if c in failed else "skipped"
        msg = next((e.get("message", "") for e in c if e.tag in ("failure", "error", "skipped")), "")
        print(f"  {what} {c.get('classname')}.{c.get('name')}: {msg.splitlines()[0] if msg else ''}")
    return 0 if cases and not failed and not skipped else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("accuracy")
    p.add_argument("run_dir")
    p.add_argument("--min", type=float, required=True)
    p.add_argument("--what", choices=["val", "test"], default="val")
    p.set_defaults(fn=accuracy)
    p = sub.add_parser("losses")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--tol", type=float, required=True)
    p.add_argument("--min-steps", type=int, default=1)
    p.add_argument("--max-step", type=int, default=1 << 62)
    p.set_defaults(fn=losses)
    p = sub.add_parser("steps")
    p.add_argument("run_dir")
    p.set_defaults(fn=steps)
    p = sub.add_parser("gtest-xml")
    p.add_argument("file")
    p.set_defaults(fn=gtest_xml)
    a = ap.parse_args()
    sys.exit(a.fn(a))


if __name__ == "__main__":
    main()
