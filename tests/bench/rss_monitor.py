"""Resident memory of a running mnist_dist job (one process or mpirun ranks), sampled from
/proc every 20 ms, and its peaks per phase told apart by rank 0's output lines: training from
the start (or the previous epoch's line) to the epoch's last progress line, evaluation from
there to the 'Epoch k/N - ...s' line, and the test evaluation after the last epoch.
Used by bench.py (section m)."""
import glob
import re
import shutil
import subprocess
import threading
import time

STEP_RE = re.compile(r"^Epoch (\d+)/\d+ - step ")
END_RE = re.compile(r"^Epoch (\d+)/\d+ - [0-9.]+s - ")


def _descendants(root, name):
    """PIDs of processes called `name` below `root`, with their MPI rank (0 when not under MPI)."""
    found = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/stat") as f:
                st = f.read()
            if st[st.index("(") + 1:st.rindex(")")] != name:
                continue
            pid = q = int(d[6:])
            for _ in range(8):
                if q == root:
                    found.append((pid, _rank(pid)))
                    break
                with open(f"/proc/{q}/stat") as f:
                    s = f.read()
                q = int(s[s.rindex(")") + 2:].split()[1])
                if q <= 1:
                    break
        except (OSError, ValueError):
            continue
    return found


def _rank(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for kv in f.read().split(b"\0"):
                if kv.startswith(b"OMPI_COMM_WORLD_RANK=") or kv.startswith(b"PMI_RANK="):
                    return int(kv.split(b"=", 1)[1])
    except (OSError, ValueError):
        pass
    return 0


def _status(pid):
    """VmRSS, RssAnon, RssFile in MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = line.split(":", 1)[0]
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(line.split()[1]) / 1024.0
    return out


def run_sampled(cmd, env, interval=0.02, name="mnist_dist"):
    """Runs cmd (line-buffered), returns (exit code, [(time, line)], [(time, rank, status)])."""
    if shutil.which("stdbuf"):
        cmd = ["stdbuf", "-oL"] + cmd
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples, lines, stop = [], [], threading.Event()

    def sampler():
        while not stop.is_set():
            now = time.time()
            for pid, rank in _descendants(p.pid, name):
                try:
                    st = _status(pid)
                except OSError:
                    continue
                if "VmRSS" in st:  # absent once the process is exiting
                    samples.append((now, rank, st))
            stop.wait(interval)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    for line in p.stdout:
        lines.append((time.time(), line.rstrip("\n")))
    p.wait()
    stop.set()
    th.join()
    return p.returncode, lines, samples


def phase_peaks(lines, samples):
    """Per rank: peak RSS in training and in evaluation, per epoch, its anonymous part."""
    last_step, epoch_end = {}, {}
    for t, line in lines:
        m = STEP_RE.match(line)
        if m:
            last_step[int(m.group(1))] = t
        m = END_RE.match(line)
        if m:
            epoch_end[int(m.group(1))] = t
    t0 = samples[0][0] if samples else 0.0
    per_rank = []
    for rank in sorted({r for _, r, _ in samples}):
        s = [(t, st["VmRSS"], st.get("RssAnon", 0.0), st.get("RssFile", 0.0))
             for t, r, st in samples if r == rank]
        train, evaluation, by_epoch = [], [], []
        prev = t0
        for e in sorted(epoch_end):
            cut = last_step.get(e, epoch_end[e])
            train += [v for t, v, _, _ in s if prev <= t <= cut]
            evaluation += [v for t, v, _, _ in s if cut < t <= epoch_end[e]]
            by_epoch.append(max([v for t, v, _, _ in s if prev <= t <= epoch_end[e]] or [0.0]))
            prev = epoch_end[e]
        evaluation += [v for t, v, _, _ in s if t > prev]  # the test split after the last epoch
        per_rank.append({
            "rank": rank,
            "peak_mib": max([v for _, v, _, _ in s] or [0.0]),
            "anon_peak_mib": max([a for _, _, a, _ in s] or [0.0]),
            "file_peak_mib": max([f for _, _, _, f in s] or [0.0]),
            "train_peak_mib": max(train or [0.0]),
            "eval_peak_mib": max(evaluation or [0.0]),
            "peak_by_epoch_mib": by_epoch,
            "growth_mib": (by_epoch[-1] - by_epoch[0]) if by_epoch else 0.0,
        })
    return per_rank
