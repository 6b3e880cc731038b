#!/usr/bin/env bash
# shaped_links_bench.sh: exchange and step times across 2 and 3 namespace hosts whose links are
# limited with tc (cluster/netns_cluster.sh shape) to each of --rates in turn, and a cost model
# fitted to them that predicts 2-64 nodes of CPU ranks and of GPUs (tests/bench/costmodel.py).
# Root; the 3-host cluster is removed on every exit. Prints a Markdown report.
# Usage: tests/bench/shaped_links_bench.sh [--build DIR] [--rates off,25gbit,10gbit,1gbit]
#                                          [--reps N] [--steps S] [--out FILE.md] [--json FILE]
# Environment: MULTINODE_CACHE (where the data set is kept; default build/tests/multinode/cache).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build
args=()
while (($#)); do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --rates|--reps|--steps|--out|--json) args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "shaped_links_bench.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
[[ "$(id -u)" -eq 0 ]] || { echo "shaped_links_bench.sh: needs root (network namespaces, tc)" >&2; exit 2; }
for b in mnist_dist md_bench_allreduce; do
  [[ -x "$build/$b" ]] || { echo "shaped_links_bench.sh: $build/$b is not built (--build)" >&2; exit 2; }
done
command -v tc >/dev/null || { echo "shaped_links_bench.sh: 'tc' not found (apt-get install iproute2)" >&2; exit 2; }
cache=${MULTINODE_CACHE:-$build/tests/multinode/cache}
data=$(MNIST_PREPARE=$build/mnist_prepare "$root/tests/multinode/make_data.sh" "$cache/fashion-20000" 20000 2000)
cluster=$root/cluster/netns_cluster.sh
name=mds
trap '"$cluster" --name "$name" down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM
"$cluster" --name "$name" --subnet 10.77.16 up 3
/usr/bin/python3 "$root/tests/bench/shaped_links_bench.py" --mnist-dist "$build/mnist_dist" \
  --allreduce "$build/md_bench_allreduce" --data "$data" --cluster "$cluster" --name "$name" "${args[@]}"
