"""A cost model of data-parallel training steps, fitted to shaped_links_bench.py's measurements.

Exchange (all-reduce of S bytes in buckets of at most 1 MiB over n hosts, links of bandwidth B):
    T(n, S) = k(S) · L(n) · α + 2(n−1)/n · S / B
  k(S) = the number of buckets (each all-reduce pays the latency), L(n) = 2(n−1) latency steps and
  2(n−1)/n · S the bytes a rank sends in a ring (reduce-scatter + all-gather: mnist_dist hands
  Open MPI's non-blocking all-reduce the ring, comm/comm_mpi.cpp). α is fitted per link (it holds
  the software's own latency: TCP and Open MPI on the namespace veths), 1/B too: least squares on
  relative error, on the 2-host points (3 ranks on this machine's 2 cores stall each other's ring).
Step: backward overlaps the exchange, so a step is
    step(n) = c(n) + max(0, T(n, arena) − κ · c(n))
  with c(n) the compute time per step and κ the share of it that can hide the exchange (fitted).
Predictions: c(N) = c1 · (b / 128) with b the batch per node (CPU rank: c1 measured here on one
core; GPU: an assumed rate, see GPU_*), α = α_software + the link's one-way latency.
"""
import math

BUCKET = 1 << 20
ARENA = 1726054 * 4  # seed net gradient bytes
# GPU compute per step (an assumption until the device check measures it): a fixed cost of the
# step's ~60 kernel launches and an effective FP32 rate for the seed net's small GEMMs/convs.
GPU_FIXED_MS = 0.30
GPU_TFLOPS = 15.0
SEED_TRAIN_FLOPS = 6 * (6 * 25 * 784 + 12 * 150 * 196 + 588 * 1200 + 1200 * 840 + 840 * 10)
LINKS = [("1 Gbit/s, 200 µs", 1e9, 200e-6), ("10 Gbit/s, 50 µs", 10e9, 50e-6), ("25 Gbit/s, 20 µs", 25e9, 20e-6)]
NODES = [2, 4, 8, 16, 32, 64]


def buckets(size):
    return max(1, math.ceil(size / BUCKET))


def lat_steps(n):
    return 2 * (n - 1)


def exchange_s(n, size, alpha, inv_bw):
    if n <= 1:
        return 0.0
    return buckets(size) * lat_steps(n) * alpha + 2 * (n - 1) / n * size * inv_bw


def fit_link(rows):
    """rows: (n, bytes, seconds). Least squares of the relative error for α and 1/B (both ≥ 0)."""
    a11 = a12 = a22 = b1 = b2 = 0.0
    for n, size, t in rows:
        x1, x2 = buckets(size) * lat_steps(n) / t, 2 * (n - 1) / n * size / t
        a11, a12, a22, b1, b2 = a11 + x1 * x1, a12 + x1 * x2, a22 + x2 * x2, b1 + x1, b2 + x2
    det = a11 * a22 - a12 * a12
    alpha, inv_bw = (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det
    if alpha < 0:
        alpha, inv_bw = 0.0, b2 / a22
    if inv_bw < 0:
        alpha, inv_bw = b1 / a11, 0.0
    return alpha, inv_bw


def step_s(c, t_ex, kappa):
    return c + max(0.0, t_ex - kappa * c)


def fit_kappa(points, links):
    best = None
    for i in range(0, 101):
        k = i / 100
        err = sum(((step_s(p["compute_ms"] / 1e3, exchange_s(p["n"], ARENA, *links[p["rate"]]), k) -
                    p["step_ms"] / 1e3) / (p["step_ms"] / 1e3)) ** 2 for p in points)
        if best is None or err < best[0]:
            best = (err, k)
    return best[1]


def min_batch(n, c_per_sample, c_fixed, t_ex, kappa, target=0.8):
    """The smallest batch per node (a multiple of 8) at which efficiency c / step reaches target."""
    for b in range(8, 1 << 16, 8):
        c = c_fixed + c_per_sample * b
        if c / step_s(c, t_ex, kappa) >= target:
            return b
    return None


def report(one, points, load, cores):
    links = {}
    for rate in dict.fromkeys(p["rate"] for p in points):
        rows = [(p["n"], r["bytes"], r["ours_us"] / 1e6) for p in points
                if p["rate"] == rate and p["n"] <= cores for r in p["allreduce"]]
        links[rate] = fit_link(rows)
    fitted = [p for p in points if p["n"] <= cores]
    kappa = fit_kappa(fitted, links)
    alpha_sw = links.get("off", (min(a for a, _ in links.values()), 0))[0]
    lines = [f"Load average before/after {load[0]:.1f}/{load[1]:.1f} on {cores} cores. One host × 1 rank: step "
             f"{one['step_ms']:.1f} ms (compute {one['compute_ms']:.1f} ms).", "",
             "Measured under each link (medians), and the model fitted to them:", "",
             "| link (tc) | fitted α | fitted B | hosts | all-reduce 6.9 MB: measured / model | step: measured / model "
             "| exchange wait per step | efficiency vs 1 host: measured / model |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    errs_ar, errs_step = [], []
    for p in points:
        over = p["n"] > cores
        alpha, inv_bw = links[p["rate"]]
        arena = max(p["allreduce"], key=lambda r: r["bytes"])
        t_model = exchange_s(p["n"], arena["bytes"], alpha, inv_bw)
        s_model = step_s(p["compute_ms"] / 1e3, exchange_s(p["n"], ARENA, alpha, inv_bw), kappa)
        if not over:
            for r in p["allreduce"]:
                errs_ar.append(exchange_s(p["n"], r["bytes"], alpha, inv_bw) / (r["ours_us"] / 1e6) - 1)
            errs_step.append(s_model / (p["step_ms"] / 1e3) - 1)
        eff = one["step_ms"] / (p["n"] * p["step_ms"])
        eff_model = one["step_ms"] / (p["n"] * s_model * 1e3)
        label = "unshaped veth" if p["rate"] == "off" else p["rate"]
        lines.append(f"| {label} | {alpha * 1e6:.0f} µs | {8 / inv_bw / 1e9 if inv_bw else float('inf'):.2f} Gbit/s "
                     f"| {p['n']}{' (*)' if over else ''} | {arena['ours_us'] / 1e3:.1f} / {t_model * 1e3:.1f} ms "
                     f"| {p['step_ms']:.1f} / {s_model * 1e3:.1f} ms | {p['wait_ms']:.1f} ms "
                     f"| {eff:.0%} / {eff_model:.0%} |")
    lines += ["", f"(*) {max(p['n'] for p in points)} ranks on {cores} cores: a rank waiting for a core stalls the "
              "others' ring, so these points measure this machine's oversubscription, not the link; they are "
              "shown, not fitted, and not counted in the model's error."]
    worst = lambda e: max(abs(x) for x in e)
    med = lambda e: sorted(abs(x) for x in e)[len(e) // 2]
    lines += ["", f"Fitted overlap κ = {kappa:.2f} (the share of a step's compute that hides the exchange). Model error: "
              f"all-reduce, every size 4 KB–6.9 MB, median {med(errs_ar):.0%}, worst {worst(errs_ar):.0%} "
              f"({len(errs_ar)} points, 2 hosts); step time median {med(errs_step):.0%}, worst {worst(errs_step):.0%} "
              f"({len(errs_step)} points). Software latency (unshaped veth, TCP + Open MPI): α = {alpha_sw * 1e6:.0f} µs.", ""]
    c1 = one["compute_ms"] / 1e3 / 128
    gpu_c = SEED_TRAIN_FLOPS / (GPU_TFLOPS * 1e12)
    lines += ["Predicted, seed net, batch 128 per node (weak scaling), exchange of the 6.9 MB arena: step time and "
              "efficiency (step of one node / step of N), and the smallest batch per node that keeps ≥ 80 %:", "",
              "| link | N | CPU rank (1 core): step, efficiency | batch/node for ≥ 80 % (global) | GPU: step, efficiency "
              "| batch/node for ≥ 80 % (global) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, bw, lat in LINKS:
        for n in NODES:
            t_ex = exchange_s(n, ARENA, alpha_sw + lat, 8 / bw)
            c_cpu, c_gpu = c1 * 128, GPU_FIXED_MS / 1e3 + gpu_c * 128
            s_cpu, s_gpu = step_s(c_cpu, t_ex, kappa), step_s(c_gpu, t_ex, kappa)
            b_cpu = min_batch(n, c1, 0.0, t_ex, kappa)
            b_gpu = min_batch(n, gpu_c, GPU_FIXED_MS / 1e3, t_ex, kappa)
            fmt = lambda b: f"{b:,} ({b * n:,})" if b else "> 65,536"
            lines.append(f"| {name} | {n} | {s_cpu * 1e3:.1f} ms, {c_cpu / s_cpu:.0%} | {fmt(b_cpu)} "
                         f"| {s_gpu * 1e3:.2f} ms, {c_gpu / s_gpu:.0%} | {fmt(b_gpu)} |")
    lines += ["", f"CPU compute per sample {c1 * 1e6:.0f} µs (measured, one core). GPU compute is an assumption until "
              f"the device check measures it: {GPU_FIXED_MS:.2f} ms per step of launches + "
              f"{SEED_TRAIN_FLOPS / 1e6:.1f} MFLOP per sample at {GPU_TFLOPS:.0f} TFLOP/s "
              f"({gpu_c * 1e3 * 128:.3f} ms at batch 128); the GPUs' exchange is given the same software α as Open MPI "
              "over TCP (NCCL's is lower) and the same κ."]
    return "\n".join(lines)
