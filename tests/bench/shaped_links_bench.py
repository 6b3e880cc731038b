#!/usr/bin/python3
"""Beyond one machine, by simulation (run by shaped_links_bench.sh, which makes a 3-host namespace
cluster and removes it): the hosts' links are limited with tc (cluster/netns_cluster.sh shape) to
each rate in turn; under each, on 2 and 3 hosts x 1 rank:
  - md_bench_allreduce: our bucketed all-reduce and one MPI_Allreduce, 4 KB .. 6.9 MB (the arena);
  - training: mnist_dist, seed net, global batch 128, 1 thread per rank (rank r on core r mod 2),
    step time and the time each step waits for the exchange after backward.
Then a cost model (costmodel.py) is fitted to the measurements and predicts 2-64 nodes.

usage: shaped_links_bench.py --mnist-dist PATH --allreduce PATH --data DIR --cluster SH --name NAME
                             [--rates off,25gbit,10gbit,1gbit] [--reps N] [--steps S] [--out F.md] [--json F]
"""
import argparse
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import parse_epochs, run_checked, steady_rate  # noqa: E402
import costmodel  # noqa: E402

SPLIT_RE = re.compile(r"data wait ([0-9.]+)s, comm ([0-9.]+)s, compute ([0-9.]+)s")
ROW_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s+\|\s+([0-9.]+)\s+\S+\s+\S+\s+\|\s+([0-9.]+)\s+\S+\s+\S+\s+\|\s+(\d+)")
SKIP = 10


sh = functools.partial(run_checked, prog="shaped_links_bench.py")


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="md_shaped_")
        self.env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        q = lambda *c: subprocess.run([a.cluster, "--name", a.name, *c], check=True, text=True,
                                      stdout=subprocess.PIPE).stdout.split()
        self.hosts = q("hosts")
        q("hostfile", "1")
        self.mpirun_args = q("mpirun-args")

    def shape(self, rate):
        subprocess.run([self.a.cluster, "--name", self.a.name, "shape", rate], check=True)

    def mpirun(self, n, prog):
        hf = os.path.join(self.tmp, f"hostfile{n}")
        with open(hf, "w") as f:
            f.write("".join(f"{h} slots=1\n" for h in self.hosts[:n]))
        args = list(self.mpirun_args)
        args[args.index("--hostfile") + 1] = hf
        # rank r on core r mod 2 (the hosts share this machine's cores)
        return (["mpirun"] + args + ["--bind-to", "none", "-np", str(n), "sh", "-c",
                                     'exec taskset -c "$((OMPI_COMM_WORLD_RANK % $(nproc)))" "$@"', "sh"] + prog)

    def train_args(self):
        return [self.a.mnist_dist, "--data", self.a.data, "--epochs", "1", "--max-steps", str(self.a.steps),
                "--threads", "1", "--device", "cpu", "--grad-exchange", "buckets", "--progress", "lines",
                "--log-every", str(SKIP), "--run-dir", tempfile.mkdtemp(dir=self.tmp) + "/r"]

    def train(self, n):
        if n == 1:
            cmd = [self.a.cluster, "--name", self.a.name, "run", self.hosts[0], "taskset", "-c", "0"] + self.train_args()
        else:
            cmd = self.mpirun(n, self.train_args())
        out = sh(cmd, f"train {n} host(s)", self.env)
        rate, ep, split = steady_rate(out, 128, SKIP), parse_epochs(out), SPLIT_RE.search(out)
        if rate is None or not ep or split is None:
            raise SystemExit(f"shaped_links_bench.py: cannot read the rate of train {n}:\n{out[-2000:]}")
        steps = round(ep[0]["rate"] * ep[0]["seconds"] / 128)
        return {"step_ms": 128 / rate * 1e3, "wait_ms": float(split.group(2)) / steps * 1e3,
                "compute_ms": float(split.group(3)) / steps * 1e3}

    def allreduce(self, n):
        out = sh(self.mpirun(n, [self.a.allreduce]), f"all-reduce {n} hosts", self.env)
        rows = [m for m in map(ROW_RE.match, out.splitlines()) if m]
        if not rows or any(int(m.group(5)) for m in rows):
            raise SystemExit(f"shaped_links_bench.py: all-reduce {n} hosts gave no rows or wrong sums:\n{out[-2000:]}")
        return [{"bytes": int(m.group(1)), "ours_us": float(m.group(3)), "mpi_us": float(m.group(4))} for m in rows]

    def go(self):
        res = {"rates": {}, "load": [os.getloadavg()[0]]}
        self.shape("off")
        res["one_host"] = [self.train(1) for _ in range(self.a.reps)]
        for rate in self.a.rates:
            print(f"links: {rate}", flush=True)
            self.shape(rate)
            r = {"allreduce": {}, "train": {}}
            for n in (2, 3):
                r["allreduce"][n] = self.allreduce(n)
                r["train"][n] = [self.train(n) for _ in range(self.a.reps)]
            res["rates"][rate] = r
        self.shape("off")
        res["one_host"] += [self.train(1) for _ in range(self.a.reps)]
        res["load"].append(os.getloadavg()[0])
        return res


def summarise(res):
    """Medians per rate and host count: what the cost model is fitted to."""
    med = statistics.median
    one = {k: med(r[k] for r in res["one_host"]) for k in ("step_ms", "compute_ms", "wait_ms")}
    points = []
    for rate, r in res["rates"].items():
        for n in (2, 3):
            tr = r["train"][n]
            points.append({"rate": rate, "n": n, "step_ms": med(t["step_ms"] for t in tr),
                           "wait_ms": med(t["wait_ms"] for t in tr), "compute_ms": med(t["compute_ms"] for t in tr),
                           "allreduce": r["allreduce"][n]})
    return one, points


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist-dist", required=True)
    ap.add_argument("--allreduce", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--rates", default="off,25gbit,10gbit,1gbit")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--out", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--from-json", default="", help="skip the runs: report from a saved --json")
    a = ap.parse_args()
    a.rates = a.rates.split(",")
    if a.from_json:
        with open(a.from_json) as f:
            res = json.load(f)
        res["rates"] = {k: {"allreduce": {int(n): v for n, v in r["allreduce"].items()},
                            "train": {int(n): v for n, v in r["train"].items()}} for k, r in res["rates"].items()}
    else:
        res = Bench(a).go()
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
    one, points = summarise(res)
    text = costmodel.report(one, points, res["load"], os.cpu_count())
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
