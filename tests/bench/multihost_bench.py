#!/usr/bin/python3
"""Scaling across namespace hosts, side by side (run by multihost_bench.sh, which makes the 2-host
cluster with cluster/netns_cluster.sh and removes it):
  ours   1 host x 1 rank (one process, core 0) vs 2 hosts x 1 rank (mpirun across the hosts over
         TCP, rank r on core r), and 1 host x 2 ranks (shared memory) for reference;
         control: two independent 1 x 1 runs at once (cores 0 and 1), no exchange: what two ranks
         could reach at best on this machine now (other load, shared caches, the vCPUs' placement);
  torch  1 host x 1 process (torch_bench.py step) vs DDP gloo 2 hosts x 1 process (one rank per
         host, rank r on core r), and DDP 2 processes on one host for reference.
Seed net, global batch 128, 1 thread per rank; rates are samples/s after 10 warm-up steps, medians
of --reps alternations. Bytes moved: the hosts' veth counters (both directions) over the run,
per step and rank. Time split (ours): the epoch line's compute / comm (waiting for the exchange).

usage: multihost_bench.py --mnist-dist PATH --data DIR --cluster NETNS_CLUSTER_SH --name NAME
                          [--reps N] [--steps S] [--out FILE.md]
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
from bench import parse_epochs, run_checked, steady_rate  # noqa: E402  (the same parsing as run_bench.sh)

TORCH = ["/usr/bin/python3", os.path.join(HERE, "torch_bench.py")]
SPLIT_RE = re.compile(r"data wait ([0-9.]+)s, comm ([0-9.]+)s, compute ([0-9.]+)s")
SKIP = 10


def med(v):
    return statistics.median(v) if v else float("nan")


class Cluster:
    def __init__(self, script, name):
        self.script, self.name = script, name
        self.hosts = subprocess.run([script, "--name", name, "hosts"], check=True, text=True,
                                    stdout=subprocess.PIPE).stdout.split()
        subprocess.run([script, "--name", name, "hostfile", "1"], check=True, stdout=subprocess.DEVNULL)
        self.mpirun_args = subprocess.run([script, "--name", name, "mpirun-args"], check=True, text=True,
                                          stdout=subprocess.PIPE).stdout.split()
        self.subnet = self.mpirun_args[self.mpirun_args.index("oob_tcp_if_include") + 1].rsplit(".", 1)[0]

    def run(self, host, cmd):
        return [self.script, "--name", self.name, "run", host] + cmd

    def veth_bytes(self):
        total = 0
        for i in range(1, len(self.hosts) + 1):
            for d in ("rx_bytes", "tx_bytes"):
                with open(f"/sys/class/net/{self.name}v{i}/statistics/{d}") as f:
                    total += int(f.read())
        return total


run = functools.partial(run_checked, prog="multihost_bench.py")


def json_rows(text):
    return [json.loads(l) for l in text.splitlines() if l.startswith("{")]


class Bench:
    def __init__(self, a):
        self.a, self.c = a, Cluster(a.cluster, a.name)
        self.tmp = tempfile.mkdtemp(prefix="md_multihost_")
        self.env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            self.env.pop(k, None)

    def ours_args(self):
        return [self.a.mnist_dist, "--data", self.a.data, "--epochs", "1", "--max-steps", str(self.a.steps),
                "--threads", "1", "--device", "cpu", "--progress", "lines", "--log-every", str(SKIP),
                "--run-dir", tempfile.mkdtemp(dir=self.tmp) + "/r"]

    def ours(self, kind):
        h1 = self.c.hosts[0]
        if kind == "2copies":  # two independent 1x1 runs at once, one per host and core: the ceiling
            procs = [subprocess.Popen(self.c.run(h, ["taskset", "-c", str(i)] + self.ours_args()), env=self.env,
                                      text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for i, h in enumerate(self.c.hosts[:2])]
            outs = [p.communicate(timeout=900)[0] for p in procs]
            rates = [steady_rate(o, 128, SKIP) for o in outs]
            if any(r is None for r in rates):
                raise SystemExit("multihost_bench.py: cannot read ours 2copies' rates:\n" + outs[0][-2000:])
            print("  ours 2copies", flush=True)
            return {"rate": sum(rates)}
        if kind == "1x1":
            cmd = self.c.run(h1, ["taskset", "-c", "0"] + self.ours_args())
        else:
            slots = "1" if kind == "2hx1" else "2"
            with open(os.path.join(self.tmp, "hostfile"), "w") as f:
                hosts = self.c.hosts[:2] if kind == "2hx1" else self.c.hosts[:1]
                f.write("".join(f"{h} slots={slots}\n" for h in hosts))
            args = list(self.c.mpirun_args)
            args[args.index("--hostfile") + 1] = os.path.join(self.tmp, "hostfile")
            # rank r on core r: the hosts share the machine's cores
            cmd = (["mpirun"] + args + ["--bind-to", "none", "-np", "2", "sh", "-c",
                                         'exec taskset -c "$OMPI_COMM_WORLD_RANK" "$@"', "sh"] + self.ours_args())
        b0 = self.c.veth_bytes()
        out = run(cmd, f"ours {kind}", self.env)
        moved = self.c.veth_bytes() - b0
        rate = steady_rate(out, 128, SKIP)
        ep = parse_epochs(out)
        split = SPLIT_RE.search(out)
        if rate is None or not ep or split is None:
            raise SystemExit(f"multihost_bench.py: cannot read ours {kind}'s rate:\n{out[-2000:]}")
        steps = round(ep[0]["rate"] * ep[0]["seconds"] / 128)
        return {"rate": rate, "steps": steps, "seconds": ep[0]["seconds"], "comm": float(split.group(2)),
                "compute": float(split.group(3)), "wait": float(split.group(1)), "bytes": moved}

    def torch(self, kind):
        common = ["--threads", "1", "--steps", str(self.a.torch_steps), "--warmup", str(SKIP), "--reps", "3"]
        h1, h2 = self.c.hosts[0], self.c.hosts[1]
        b0 = self.c.veth_bytes()
        if kind == "1x1":
            out = run(self.c.run(h1, ["taskset", "-c", "0"] + TORCH + ["step", self.a.data] + common), "torch 1x1", self.env)
            rows = json_rows(out)
        elif kind == "2copies":
            procs = [subprocess.Popen(self.c.run(h, ["taskset", "-c", str(i)] + TORCH + ["step", self.a.data] + common),
                                      env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for i, h in enumerate(self.c.hosts[:2])]
            outs = [p.communicate(timeout=900)[0] for p in procs]
            rr = [json_rows(o) for o in outs]
            if not all(rr):
                raise SystemExit("multihost_bench.py: no result from torch 2copies:\n" + outs[0][-2000:])
            print("  torch 2copies", flush=True)
            return {"rates": [a + b for a, b in zip(rr[0][0]["rates"], rr[1][0]["rates"])], "bytes": 0, "steps": 1}
        elif kind == "1hx2":
            out = run(self.c.run(h1, TORCH + ["ddp", self.a.data, "--procs", "2"] + common), "torch ddp 1hx2", self.env)
            rows = json_rows(out)
        else:
            env = dict(self.env, MASTER_ADDR=f"{self.c.subnet}.1", MASTER_PORT="29517", GLOO_SOCKET_IFNAME="eth0")
            r1 = subprocess.Popen(self.c.run(h2, ["taskset", "-c", "1"] + TORCH + ["ddp", self.a.data, "--procs", "2", "--rank", "1"] + common),
                                  env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                out = run(self.c.run(h1, ["taskset", "-c", "0"] + TORCH + ["ddp", self.a.data, "--procs", "2", "--rank", "0"] + common),
                          "torch ddp 2hx1", env)
                r1.wait(timeout=120)
            finally:
                if r1.poll() is None:
                    r1.kill()
            rows = json_rows(out)
        moved = self.c.veth_bytes() - b0
        if not rows:
            raise SystemExit(f"multihost_bench.py: no result from torch {kind}:\n{out[-2000:]}")
        return {"rates": rows[0]["rates"], "bytes": moved,
                "steps": (SKIP + self.a.torch_steps * 3)}

    def go(self):
        res = {k: [] for k in ("o1", "o2h", "o1h2", "oc", "t1", "t2h", "t1h2", "tc")}
        for i in range(self.a.reps):
            print(f"alternation {i + 1}/{self.a.reps}", flush=True)
            sides = [("o", self.ours), ("t", self.torch)]
            if i % 2:
                sides.reverse()
            for s, f in sides:
                res[s + "1"].append(f("1x1"))
                res[s + "2h"].append(f("2hx1"))
                res[s + "1h2"].append(f("1hx2"))
                res[s + "c"].append(f("2copies"))
        return res


def report(res, a):
    o1, o2h, o1h2 = (med([r["rate"] for r in res[k]]) for k in ("o1", "o2h", "o1h2"))
    effs = [b["rate"] / (2 * x["rate"]) for x, b in zip(res["o1"], res["o2h"])]
    t1 = med([med(r["rates"]) for r in res["t1"]])
    t2h = med([med(r["rates"]) for r in res["t2h"]])
    t1h2 = med([med(r["rates"]) for r in res["t1h2"]])
    oc = med([r["rate"] for r in res["oc"]])
    tc = med([med(r["rates"]) for r in res["tc"]])
    # Each byte between the hosts passes both veths (rx on one, tx on the other): the counters
    # sum to 2 x the traffic; per rank and step, sent (= received): / 2 / 2 ranks / steps.
    o_bytes = med([r["bytes"] / 4 / r["steps"] for r in res["o2h"]])
    t_bytes = med([r["bytes"] / 4 / r["steps"] for r in res["t2h"]])
    comm = med([r["comm"] / r["steps"] * 1e3 for r in res["o2h"]])
    comp = med([r["compute"] / r["steps"] * 1e3 for r in res["o2h"]])
    comm1 = med([r["comm"] / r["steps"] * 1e3 for r in res["o1"]])
    comp1 = med([r["compute"] / r["steps"] * 1e3 for r in res["o1"]])
    lines = [
        f"Seed net, global batch 128, 1 thread per rank, {a.reps} alternations (medians); links' MTU "
        f"{res.get('mtu', 1500):,}; load average "
        f"before/after {res['load'][0]:.1f}/{res['load'][1]:.1f} on {os.cpu_count()} cores; ours "
        f"{a.steps} steps per run, rate after step {SKIP}; PyTorch 3 × {a.torch_steps} steps after {SKIP} warm-up.",
        "",
        "| configuration | ours (samples/s) | PyTorch (samples/s) | ours / PyTorch |",
        "| --- | ---: | ---: | ---: |",
        f"| 1 host × 1 rank | {o1:,.0f} | {t1:,.0f} | {o1 / t1:.2f} |",
        f"| 2 hosts × 1 rank (TCP between namespace hosts) | {o2h:,.0f} | {t2h:,.0f} (DDP gloo) | {o2h / t2h:.2f} |",
        f"| 1 host × 2 ranks (shared memory) | {o1h2:,.0f} | {t1h2:,.0f} (DDP gloo) | {o1h2 / t1h2:.2f} |",
        f"| **efficiency 2 hosts**: rate(2 hosts) / (2 · rate(1×1)) | **{o2h / (2 * o1):.0%}** | **{t2h / (2 * t1):.0%}** | |",
        f"| efficiency 1 host × 2 | {o1h2 / (2 * o1):.0%} | {t1h2 / (2 * t1):.0%} | |",
        f"| control: two independent 1 × 1 runs at once (no exchange), summed | {oc:,.0f} | {tc:,.0f} | |",
        f"| ceiling the machine allows now: rate(two at once) / (2 · rate(1×1)) | {oc / (2 * o1):.0%} | {tc / (2 * t1):.0%} | |",
        f"| 2 hosts against that ceiling: rate(2 hosts) / rate(two at once) | {o2h / oc:.0%} | {t2h / tc:.0%} | |",
        "",
        f"Ours, 2 hosts: efficiency per alternation {', '.join(f'{e:.0%}' for e in effs)}. Per step and rank: "
        f"compute {comp:.1f} ms, waiting for the exchange {comm:.1f} ms (1 host × 1 rank: compute {comp1:.1f} ms, "
        f"{comm1:.1f} ms); each rank sent (and received) {o_bytes / 1e6:.2f} MB per step over the veths, "
        f"the whole run's traffic divided by its steps (a ring all-reduce of the 6.9 MB arena sends "
        f"2·(n−1)/n · 6.9 = 6.9 MB per rank with n = 2, plus TCP/IP headers and the start-up broadcast). "
        f"PyTorch DDP 2 hosts: {t_bytes / 1e6:.2f} MB per step and rank.",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist-dist", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=130)
    ap.add_argument("--torch-steps", type=int, default=30)
    ap.add_argument("--out", default="")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    res = Bench(a).go()
    res["load"] = [load0, os.getloadavg()[0]]
    link = subprocess.run([a.cluster, "--name", a.name, "run", f"{a.name}1", "ip", "-o", "link", "show", "dev", "eth0"],
                          check=True, text=True, stdout=subprocess.PIPE).stdout  # (/sys is the root namespace's)
    res["mtu"] = int(re.search(r" mtu (\d+)", link).group(1))
    text = report(res, a)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
