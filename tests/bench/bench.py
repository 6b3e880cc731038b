#!/usr/bin/python3
"""mnist_dist vs PyTorch on this machine: runs both sides back to back (alternating, several
times, ratios taken pair by pair) on the same data and prints a Markdown table of samples/s with medians, the
ratio ours/PyTorch, GFLOP/s against the measured sgemm rate, and peak resident memory.
Called by run_bench.sh, which builds and installs what is needed first.

usage: bench.py --build DIR --data DIR [--reps N] [--quick] [--sections a,b,c,d,m]
                [--markdown FILE] [--json FILE] [--wait-idle SECONDS]
"""
import argparse
import datetime
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rss_monitor  # noqa: E402
TORCH = [sys.executable, os.path.join(HERE, "torch_bench.py")]

# Forward multiply-adds per sample (28×28 input, 10 classes); training = 3 × forward FLOPs.
FWD_MACS = {
    # conv1 6@5×5 (28×28 out) + conv2 12@5×5 (14×14 out) + 588·1200 + 1200·840 + 840·10
    "seed": 6 * 25 * 784 + 12 * 150 * 196 + 588 * 1200 + 1200 * 840 + 840 * 10,
    # conv1 6@5×5 (28×28) + conv2 16@5×5 valid (10×10) + 400·120 + 120·84 + 84·10
    "lenet5": 6 * 25 * 784 + 16 * 150 * 100 + 400 * 120 + 120 * 84 + 84 * 10,
}


def train_flops(model):
    return 3 * 2 * FWD_MACS[model]


def infer_flops(model):
    return 2 * FWD_MACS[model]


def bench_env():
    """The benchmark commands' environment: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on these
    machines for old OpenBLAS builds) slow OpenBLAS 0.3.21 down, so both sides run without."""
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(k, None)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_jiffies():
    """CPU time (jiffies) all processes spent, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_idle(window=0.5):
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = read()
    time.sleep(window)
    t1, i1 = read()
    return 100.0 * (i1 - i0) / max(1, t1 - t0)


class Runner:
    def __init__(self, args):
        self.args = args
        self.env = bench_env()
        self.busy_notes = []
        self.disturbance = []  # per run: share of the CPUs other processes used
        self.log = open(args.log, "w") if args.log else None

    def wait_idle(self, what):
        """Waits (up to --wait-idle s) for the machine to be idle, so another process's load does
        not land in one side's numbers; notes when it never was."""
        deadline = time.time() + self.args.wait_idle
        idle = cpu_idle()
        while idle < 90.0 and time.time() < deadline:
            idle = cpu_idle()
        if idle < 90.0:
            self.busy_notes.append(f"{what}: machine only {idle:.0f}% idle before the run")
        return idle

    def run(self, cmd, what, timeout=900):
        """Runs cmd; reruns it (up to --retries times) while other processes took more than
        --max-other of the machine's CPU time during the run, and keeps the least disturbed."""
        best = None
        make = cmd if callable(cmd) else (lambda: cmd)
        for attempt in range(1 + self.args.retries):
            cmd = make()
            self.wait_idle(what)
            busy0, ru0, t0 = busy_jiffies(), children_cpu(), time.time()
            p = subprocess.run(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=timeout)
            wall = time.time() - t0
            others = max(0.0, (busy_jiffies() - busy0) / CLK_TCK - (children_cpu() - ru0))
            share = others / max(1e-9, wall * os.cpu_count())
            if self.log:
                self.log.write(f"$ {' '.join(cmd)}\n{p.stdout}\n# exit {p.returncode}, {wall:.1f}s, "
                               f"other processes used {share:.0%} of the CPUs\n")
                self.log.flush()
            if p.returncode != 0:
                sys.stderr.write(p.stdout[-3000:])
                raise SystemExit(f"bench.py: '{what}' failed (exit {p.returncode}): {' '.join(cmd)}")
            if best is None or share < best[1]:
                best = (p.stdout, share)
            if share <= self.args.max_other:
                break
        if best[1] > self.args.max_other:
            self.busy_notes.append(f"{what}: other processes used {best[1]:.0%} of the CPUs during the run")
        self.disturbance.append(best[1])
        return best[0]

    def json_lines(self, cmd, what):
        """cmd: a list, or a function returning a fresh one for each (re)run."""
        out = self.run(cmd, what)
        rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        if not rows:
            raise SystemExit(f"bench.py: '{what}' printed no result line")
        return rows


EPOCH_RE = re.compile(r"^Epoch (\d+)/(\d+) - ([0-9.]+)s - ([0-9.]+) samples/s.*?data wait ([0-9.]+)s")


def parse_epochs(text):
    rows = []
    for line in text.splitlines():
        m = EPOCH_RE.match(line.strip())
        if m:
            rows.append({"epoch": int(m.group(1)), "seconds": float(m.group(3)),
                         "rate": float(m.group(4)), "data_wait": float(m.group(5))})
    return rows


STEP_RE = re.compile(r"^Epoch 1/\d+ - step (\d+)/\d+ - ([0-9.]+)s")


def steady_rate(text, batch, skip):
    """Samples/s from step `skip` to the end of epoch 1 (the first steps fault in buffers and
    shared windows, like the warm-up steps the PyTorch side leaves out): progress lines
    'Epoch 1/N - step k/M - Ts' give the time at step `skip`, the epoch line the end."""
    at = {int(m.group(1)): float(m.group(2)) for m in map(STEP_RE.match, (l.strip() for l in text.splitlines())) if m}
    end = parse_epochs(text)
    if skip not in at or not end:
        return None
    steps_done = round(end[0]["rate"] * end[0]["seconds"] / batch)
    span = end[0]["seconds"] - at[skip]
    return (steps_done - skip) * batch / span if span > 0 and steps_done > skip else None


def run_checked(cmd, what, env=None, timeout=900, prog="bench.py"):
    """Runs cmd, prints how long it took; a failure ends the benchmark naming prog and what failed."""
    t0 = time.time()
    p = subprocess.run(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"{prog}: {what} failed (exit {p.returncode}):\n{p.stdout[-3000:]}")
    print(f"  {what}: {time.time() - t0:.1f} s", flush=True)
    return p.stdout


def med(values):
    return statistics.median(values) if values else float("nan")


class Bench:
    def __init__(self, args):
        self.a = args
        self.r = Runner(args)
        b = args.build
        self.md_bench = os.path.join(b, "md_bench")
        cands = [os.path.join(b, "mnist_dist", "mnist_dist"), os.path.join(b, "mnist_dist")]
        self.mnist_dist = next((c for c in cands if os.path.isfile(c) and os.access(c, os.X_OK)), None)
        if not os.access(self.md_bench, os.X_OK) or self.mnist_dist is None:
            raise SystemExit(f"bench.py: md_bench / mnist_dist not found under {b} (run run_bench.sh)")
        help_text = subprocess.run([self.mnist_dist, "--help"], env=self.r.env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout
        self.tmp = tempfile.mkdtemp(prefix="md_bench_")
        self.extra = []
        self.run_dir = "--run-dir" in help_text  # each run gets a fresh one (run_args())
        if "--progress" in help_text:
            self.extra += ["--progress", "lines"]
        self.rows = []      # result table rows
        self.results = {}   # everything, for --json
        self.mpirun = shutil.which("mpirun")

    def run_args(self):
        """mnist_dist's extra flags: a new --run-dir each time (when it has one), plain lines."""
        args = list(self.extra)
        if self.run_dir:
            args += ["--run-dir", tempfile.mkdtemp(prefix="run_", dir=self.tmp) + "/r"]
        return args

    # ---- sides ---------------------------------------------------------------------------
    def ours_step(self, model, threads, mode="step", batch=128):
        steps = {"seed": 40, "lenet5": 150}[model] if mode == "step" else 8
        rows = self.r.json_lines([self.md_bench, mode, "--data", self.a.data, "--model", model,
                                  "--threads", str(threads), "--batch-size", str(batch),
                                  "--steps", str(steps), "--warmup", "10" if mode == "step" else "2",
                                  "--reps", "5"], f"ours {mode} {model} {threads}t")
        return rows[0]

    def torch_step(self, model, threads, mode="step", batch=128):
        steps = {"seed": 30, "lenet5": 100}[model] if mode == "step" else 6
        rows = self.r.json_lines(TORCH + [mode, self.a.data, "--model", model, "--threads", str(threads),
                                          "--batch-size", str(batch), "--steps", str(steps),
                                          "--warmup", "10" if mode == "step" else "2", "--reps", "5"],
                                 f"torch {mode} {model} {threads}t")
        return rows[0]

    def ours_train(self, threads, ranks=1, epochs=1, max_steps=0, model="seed", skip=0):
        """mnist_dist's epoch lines; with skip, also 'steady': the rate after the first `skip` steps."""
        def make():
            cmd = [self.mnist_dist, "--device", "cpu", "--data", self.a.data, "--model", model, "--epochs", str(epochs),
                   "--threads", str(threads)] + self.run_args()
            if max_steps:
                cmd += ["--max-steps", str(max_steps)]
            if skip:
                cmd += ["--log-every", str(skip)]
            if ranks > 1:
                cmd = [self.mpirun, "-np", str(ranks), "--oversubscribe"] + cmd
            return cmd
        out = self.r.run(make, f"ours train {ranks}x{threads}")
        rows = parse_epochs(out)
        if not rows:
            raise SystemExit("bench.py: no 'Epoch k/N - ...s - ... samples/s' line from mnist_dist:\n" + out[-2000:])
        if skip:
            rows[0]["steady"] = steady_rate(out, 128, skip)
            if rows[0]["steady"] is None:
                raise SystemExit(f"bench.py: no progress line at step {skip} from mnist_dist:\n" + out[-2000:])
        return rows

    # ---- sections ------------------------------------------------------------------------
    def add(self, section, name, ours, torch, target=None, flops=None, sgemm=None, note="", pairs=None):
        """ours / torch: all measured rates of the row. pairs: one (ours, torch) rate per
        alternation, the two measured back to back. The row's ratio is the median of the pair
        ratios: this VM has slow phases lasting minutes that slow both sides of a pair alike, and a
        ratio of the two sides' medians moves when a phase covers more of one side's runs. The
        table also shows the ratio of the medians and that of each side's fastest repetition."""
        mo, mt = med(ours), med(torch)
        ratio_of_medians = mo / mt if mt else float("nan")
        pair_ratios = [o / t for o, t in (pairs or []) if t]
        ratio = med(pair_ratios) if pair_ratios else ratio_of_medians
        row = {"section": section, "name": name, "ours": mo, "torch": mt, "ratio": ratio,
               "ratio_of_medians": ratio_of_medians, "pair_ratios": pair_ratios,
               "ours_best": max(ours), "torch_best": max(torch),
               "best_ratio": max(ours) / max(torch) if max(torch) else float("nan"),
               "target": target, "met": (ratio >= target) if target else None, "note": note,
               "n": (len(ours), len(torch))}
        if flops and sgemm:
            row["ours_gflops"] = mo * flops / 1e9
            row["torch_gflops"] = mt * flops / 1e9 if mt else float("nan")
            row["sgemm"] = sgemm
        self.rows.append(row)
        spread = f", pairs {min(pair_ratios):.2f}..{max(pair_ratios):.2f}" if pair_ratios else ""
        print(f"  {name}: ours {mo:,.0f}  PyTorch {mt:,.0f}  ratio {ratio:.2f}{spread} (of medians "
              f"{ratio_of_medians:.2f}, best runs {row['best_ratio']:.2f})"
              + (f"  (target {target})" if target else "") + (f"  {note}" if note else ""), flush=True)

    def alternate(self, i, ours, torch):
        """Runs the two sides of alternation i back to back, PyTorch first on odd i (A B B A ...),
        so a steady drift of the machine's speed does not favour the side that always runs first.
        Returns (ours's result, torch's result)."""
        if i % 2:
            t = torch()
            return ours(), t
        o = ours()
        return o, torch()

    def sgemm_rates(self):
        rates = {}
        for t in (1, 2):
            rows = self.r.json_lines([self.md_bench, "sgemm", "--threads", str(t), "--reps", "5"],
                                     f"sgemm {t}t")
            rates[t] = max(rows[0]["gflops"])
        blas = self.r.json_lines(TORCH + ["blas", "--threads", "2"], "torch blas")[0]
        self.results["sgemm"] = rates
        self.results["torch_blas"] = blas
        return rates, blas

    def section_a(self, sgemm):
        print("(a) training step loop, data in memory, batch 128", flush=True)
        for model in ("seed", "lenet5"):
            for threads in (1, 2):
                ours, torch, pairs = [], [], []
                for i in range(self.a.reps):
                    o, t = self.alternate(i, lambda: self.ours_step(model, threads)["rates"],
                                          lambda: self.torch_step(model, threads)["rates"])
                    ours += o
                    torch += t
                    pairs.append((med(o), med(t)))
                target = {("seed", 2): 2.0, ("lenet5", 2): 1.5}.get((model, threads))
                self.results[f"step_{model}_{threads}"] = {"ours": ours, "torch": torch, "pairs": pairs}
                self.add("a", f"step {model}, {threads} thread{'s' if threads > 1 else ''}",
                         ours, torch, target, train_flops(model), sgemm[threads], pairs=pairs)

    def section_b(self, sgemm):
        print("(b) one full epoch incl. data loading (seed net, 2 threads)", flush=True)
        ours, torch, wait = [], [], []
        for i in range(self.a.reps):
            e, t = self.alternate(
                i, lambda: self.ours_train(2, epochs=1)[0],
                lambda: self.r.json_lines(TORCH + ["epoch", self.a.data, "--threads", "2", "--loader",
                                                   "memory"], "torch epoch")[0])
            ours.append(e["rate"])
            wait.append(e["data_wait"])
            torch.append(t["rate"])
        pairs = list(zip(ours, torch))
        self.results["epoch"] = {"ours": ours, "torch": torch, "ours_data_wait_s": wait}
        self.add("b", "full epoch incl. loading from HDF5, seed, 2 threads", ours, torch, 2.0,
                 train_flops("seed"), sgemm[2], pairs=pairs,
                 note=f"(b) ours: prefetch thread reading the shards, data wait {med(wait):.2f} s/epoch; "
                      f"PyTorch: the split read from the shards when the epoch starts, DataLoader "
                      f"(batch 128, shuffle; per-sample h5py reads in workers measured ~2.5x slower)")

    def section_c(self, sgemm):
        print("(c) 2 ranks x 1 thread vs 1 rank x 1 thread (seed net)", flush=True)
        if self.mpirun is None:
            print("  skipped: no mpirun", flush=True)
            return
        one, two, tone, ttwo = [], [], [], []
        effs, pairs = [], []
        # 130 steps, timed after the first 10 (as PyTorch's side: 10 warm-up steps, then timed)
        steps, skip = 130, 10
        for i in range(self.a.reps):
            # ours 1x1 and 2x1 back to back (their ratio is the efficiency), then PyTorch's pair;
            # the order of the two sides alternates as in the other sections
            def ours_pair():
                a = self.ours_train(1, 1, max_steps=steps, skip=skip)[0]["steady"]
                return a, self.ours_train(1, 2, max_steps=steps, skip=skip)[0]["steady"]

            def torch_pair():
                a = self.torch_step("seed", 1)["rates"]
                return a, self.r.json_lines(TORCH + ["ddp", self.a.data, "--procs", "2", "--threads", "1",
                                                     "--steps", "30", "--warmup", "10", "--reps", "3"],
                                            "torch ddp")[0]["rates"]
            (o1, o2), (t1, t2) = self.alternate(i, ours_pair, torch_pair)
            one.append(o1)
            two.append(o2)
            tone += t1
            ttwo += t2
            effs.append(o2 / (2 * o1))
            pairs.append((o2, med(t2)))
        eff, teff = med(effs), med(ttwo) / (2 * med(tone))
        eff_of_medians = med(two) / (2 * med(one))
        eff_best = max(two) / (2 * max(one))
        self.results["ranks"] = {"ours_1x1": one, "ours_2x1": two, "torch_1x1": tone, "torch_2x1": ttwo,
                                 "ours_efficiency": eff, "ours_efficiencies": effs,
                                 "torch_efficiency": teff}
        self.add("c", "2 ranks × 1 thread (mpirun / DDP gloo)", two, ttwo, None,
                 train_flops("seed"), sgemm[2], pairs=pairs)
        self.rows.append({"section": "c", "name": "2×1 efficiency: rate(2×1) / (2 · rate(1×1))",
                          "ours": eff, "torch": teff, "ratio": None, "target": 0.85,
                          "met": eff >= 0.85,
                          "note": f"1 rank × 1 thread: ours {med(one):,.0f}, PyTorch {med(tone):,.0f} samples/s; "
                                  f"2×1 efficiency per alternation {', '.join(f'{e:.0%}' for e in effs)}, "
                                  f"of the medians {eff_of_medians:.0%}",
                          "fraction": True, "best": eff_best, "of_medians": eff_of_medians})
        print(f"  efficiency ours {eff:.0%} (runs {', '.join(f'{e:.0%}' for e in effs)}; of medians "
              f"{eff_of_medians:.0%})  PyTorch {teff:.0%}  (target ours >= 85%)", flush=True)

    def section_d(self, sgemm):
        print("(d) inference, batch 1000, 2 threads", flush=True)
        for model in ("seed", "lenet5"):
            ours, torch, pairs = [], [], []
            for i in range(self.a.reps):
                o, t = self.alternate(i, lambda: self.ours_step(model, 2, mode="infer", batch=1000)["rates"],
                                      lambda: self.torch_step(model, 2, mode="infer", batch=1000)["rates"])
                ours += o
                torch += t
                pairs.append((med(o), med(t)))
            self.results[f"infer_{model}"] = {"ours": ours, "torch": torch, "pairs": pairs}
            self.add("d", f"inference {model}, batch 1000, 2 threads", ours, torch,
                     1.5 if model == "seed" else None, infer_flops(model), sgemm[2], pairs=pairs)

    def section_m(self):
        """Resident memory of mnist_dist itself over 5 epochs, per rank, sampled every 20 ms;
        training vs evaluation told apart by rank 0's progress and epoch lines."""
        print("(m) memory: 5 epochs, 1 rank x 2 threads and 2 ranks x 1 thread", flush=True)
        mem = {}
        for ranks, threads in ((1, 2), (2, 1)):
            if ranks > 1 and self.mpirun is None:
                continue
            mem[f"{ranks}x{threads}"] = self.rss_run(ranks, threads, epochs=5)
        self.results["memory"] = mem

    def rss_run(self, ranks, threads, epochs):
        cmd = [self.mnist_dist, "--device", "cpu", "--data", self.a.data, "--epochs", str(epochs), "--threads", str(threads)] + self.run_args()
        if "--progress" in self.extra:
            cmd += ["--log-every", "20"]
        if ranks > 1:
            cmd = [self.mpirun, "-np", str(ranks), "--oversubscribe"] + cmd
        self.r.wait_idle("memory run")
        code, lines, samples = rss_monitor.run_sampled(cmd, self.r.env)
        if self.r.log:
            self.r.log.write(f"$ {' '.join(cmd)}\n" + "\n".join(l for _, l in lines) + "\n")
        if code != 0:
            raise SystemExit("bench.py: memory run failed:\n" + "\n".join(l for _, l in lines[-30:]))
        out = {"ranks": ranks, "threads": threads, "per_rank": rss_monitor.phase_peaks(lines, samples)}
        print(f"  {ranks}x{threads}: " + "; ".join(
            f"rank {x['rank']} train {x['train_peak_mib']:.0f} MiB, eval {x['eval_peak_mib']:.0f} MiB "
            f"(anonymous {x['anon_peak_mib']:.0f}, files {x['file_peak_mib']:.0f}), peak in epochs "
            f"1..{len(x['peak_by_epoch_mib'])} {', '.join(f'{v:.0f}' for v in x['peak_by_epoch_mib'])}"
            for x in out["per_rank"]), flush=True)
        return out

    # ---- report --------------------------------------------------------------------------
    def markdown(self, sgemm, blas, started):
        lscpu = subprocess.run(["lscpu"], text=True, stdout=subprocess.PIPE).stdout
        def field(k):
            m = re.search(rf"^{k}:\s*(.+)$", lscpu, re.M)
            return m.group(1).strip() if m else "?"
        mem_total = 0
        with open("/proc/meminfo") as f:
            mem_total = int(f.readline().split()[1]) // 1024
        lines = []
        cpus, cores, tpc = field(r"CPU\(s\)"), field(r"Core\(s\) per socket"), field(r"Thread\(s\) per core")
        flags = " ".join(f for f in ("avx512f", "avx2") if f in lscpu)
        lines.append(f"Measured {started} on {field('Model name')}, {cpus} CPUs ({cores} cores/socket, "
                     f"{tpc} thread/core), L2 {field('L2 cache')}, L3 {field('L3 cache')}, "
                     f"{mem_total} MiB RAM; flags {flags}.")
        lines.append(f"sgemm 2048³ (OpenBLAS, ours): {sgemm[1]:.0f} GFLOP/s on 1 thread, {sgemm[2]:.0f} on 2. "
                     f"PyTorch {blas.get('torch')} uses {', '.join(os.path.basename(l) for l in blas.get('libraries', []))} "
                     f"({blas.get('sgemm_2048_gflops', 0):.0f} GFLOP/s at 2048³, 2 threads).")
        dist = self.r.disturbance
        lines.append(f"{self.a.reps} alternations per row, the two sides back to back in each (ours first, then "
                     f"PyTorch first, ...). samples/s: medians of all timed repetitions of a side. ours/PyTorch "
                     f"(judged against the target): the median over the alternations of the ratio of the two "
                     f"back-to-back runs, with their range; 'of medians' divides the two sides' medians, 'best "
                     f"runs' each side's fastest repetition. Other processes used at most "
                     f"{max(dist or [0]):.0%} (median {med(dist or [0]):.0%}) of the CPUs during the runs.")
        lines.append("")
        lines.append("| | ours samples/s | PyTorch samples/s | ours/PyTorch (pairs: range) | target | met | of medians | best runs | ours GFLOP/s (% of sgemm) | PyTorch GFLOP/s |")
        lines.append("|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|")
        for r in self.rows:
            if r.get("fraction"):
                lines.append(f"| {r['name']} | {r['ours']:.0%} | {r['torch']:.0%} (DDP) | | ≥ {r['target']:.0%} | "
                             f"{'yes' if r['met'] else 'NO'} | {r.get('of_medians', float('nan')):.0%} | "
                             f"{r.get('best', float('nan')):.0%} | | |")
                continue
            g = ""
            tg = ""
            if "ours_gflops" in r:
                g = f"{r['ours_gflops']:.0f} ({100 * r['ours_gflops'] / r['sgemm']:.0f} %)"
                tg = f"{r['torch_gflops']:.0f}"
            tgt = f"≥ {r['target']}×" if r["target"] else ""
            met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
            pr = r.get("pair_ratios") or []
            rng = f" ({min(pr):.2f}–{max(pr):.2f})" if len(pr) > 1 else ""
            lines.append(f"| {r['name']} | {r['ours']:,.0f} | {r['torch']:,.0f} | {r['ratio']:.2f}{rng} | {tgt} | {met} | "
                         f"{r['ratio_of_medians']:.2f} | {r['best_ratio']:.2f} | {g} | {tg} |")
        notes = [r["note"] for r in self.rows if r.get("note")]
        if "memory" in self.results:
            lines.append("")
            lines.append("| mnist_dist, 5 epochs | rank | peak RSS training (MiB) | peak RSS evaluation (MiB) | "
                         "of which anonymous / files (MiB) | peak RSS in epoch 1..5 (MiB) | growth epoch 1→5 |")
            lines.append("|---|---:|---:|---:|---:|---|---:|")
            for k, m in self.results["memory"].items():
                for x in m["per_rank"]:
                    lines.append(f"| {m['ranks']} rank(s) × {m['threads']} thread(s) | {x['rank']} | "
                                 f"{x['train_peak_mib']:.0f} | {x['eval_peak_mib']:.0f} | "
                                 f"{x['anon_peak_mib']:.0f} / {x['file_peak_mib']:.0f} | "
                                 f"{', '.join(f'{v:.0f}' for v in x['peak_by_epoch_mib'])} | {x['growth_mib']:+.1f} MiB |")
        if notes or self.r.busy_notes:
            lines.append("")
            for n in notes:
                lines.append(f"- {n}")
            for n in sorted(set(self.r.busy_notes)):
                lines.append(f"- warning: {n}")
        return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="build directory with md_bench and mnist_dist")
    ap.add_argument("--data", required=True, help="directory made by mnist_prepare")
    ap.add_argument("--reps", type=int, default=3, help="alternating runs per row (default 3)")
    ap.add_argument("--quick", action="store_true", help="one run per row")
    ap.add_argument("--sections", default="a,b,c,d,m")
    ap.add_argument("--markdown", help="also write the table here")
    ap.add_argument("--json", help="write all raw results here")
    ap.add_argument("--log", help="write every command and its output here")
    ap.add_argument("--wait-idle", type=float, default=60.0,
                    help="seconds to wait for an idle machine before each run (default 60)")
    ap.add_argument("--retries", type=int, default=3,
                    help="reruns of a run disturbed by other processes (default 3)")
    ap.add_argument("--max-other", type=float, default=0.05,
                    help="share of the CPUs other processes may use during a run (default 0.05)")
    a = ap.parse_args()
    if a.quick:
        a.reps = 1
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    b = Bench(a)
    sections = set(a.sections.split(","))
    try:
        print("sgemm rates and PyTorch's BLAS", flush=True)
        sgemm, blas = b.sgemm_rates()
        print(f"  ours sgemm 2048^3: {sgemm[1]:.0f} GFLOP/s (1 thread), {sgemm[2]:.0f} (2 threads); "
              f"PyTorch BLAS: {', '.join(blas['libraries'])}", flush=True)
        if not any("openblas" in l for l in blas["libraries"]):
            print("bench.py: WARNING: PyTorch does not use OpenBLAS here: its numbers are not "
                  "representative (install libopenblas0-openmp)", flush=True)
        for s, f in (("a", b.section_a), ("b", b.section_b), ("c", b.section_c), ("d", b.section_d)):
            if s in sections:
                f(sgemm)
        if "m" in sections:
            b.section_m()
        md = b.markdown(sgemm, blas, started)
        print("\n" + md)
        if a.markdown:
            with open(a.markdown, "w") as f:
                f.write(md + "\n")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"rows": b.rows, "results": b.results, "notes": b.r.busy_notes}, f, indent=1)
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
