#!/usr/bin/env bash
# multihost_bench.sh: mnist_dist vs PyTorch DDP (gloo) across 2 namespace hosts of this machine
# (cluster/netns_cluster.sh; root), side by side: 1 host x 1 rank vs 2 hosts x 1 rank (one core
# each), and 1 host x 2 ranks for reference; efficiency, bytes moved per step (veth counters) and
# ours' time split (compute / waiting for the exchange). Prints a Markdown table (multihost_bench.py).
# Usage: tests/bench/multihost_bench.sh [--build DIR] [--reps N] [--steps S] [--mtu BYTES] [--out FILE.md]
#   --mtu: the namespace links' MTU (netns_cluster.sh --mtu; default the kernel's 1500).
# Environment: MULTINODE_CACHE (where the data set is kept; default build/tests/multinode/cache).
# Needs /usr/bin/python3 with torch (Debian: python3-torch). The cluster is removed on every exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build reps=3 steps=130 out="" mtu=""
while (($#)); do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --mtu) mtu=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "multihost_bench.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
[[ "$(id -u)" -eq 0 ]] || { echo "multihost_bench.sh: needs root (network namespaces)" >&2; exit 2; }
[[ -x "$build/mnist_dist" ]] || { echo "multihost_bench.sh: $build/mnist_dist is not built (--build)" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "multihost_bench.sh: /usr/bin/python3 has no torch (apt-get install python3-torch)" >&2; exit 2; }
cache=${MULTINODE_CACHE:-$build/tests/multinode/cache}
data=$(MNIST_PREPARE=$build/mnist_prepare "$root/tests/multinode/make_data.sh" "$cache/fashion-20000" 20000 2000)
cluster=$root/cluster/netns_cluster.sh
name=mdb
trap '"$cluster" --name "$name" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM
"$cluster" --name "$name" --subnet 10.77.15 ${mtu:+--mtu "$mtu"} up 2
args=(--mnist-dist "$build/mnist_dist" --data "$data" --cluster "$cluster" --name "$name" --reps "$reps" --steps "$steps")
[[ -z "$out" ]] || args+=(--out "$out")
/usr/bin/python3 "$root/tests/bench/multihost_bench.py" "${args[@]}"
