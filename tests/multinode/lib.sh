# lib.sh: shared by the multinode tests (sourced): skip/fail helpers, the namespace cluster
# brought up for one test and always torn down (trap on every exit path), mpirun across it.
# The sourcing script sets PROG first. Exit codes: 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE).
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER="$REPO/cluster/netns_cluster.sh"
MNIST_DIST="${MNIST_DIST:-$REPO/build/mnist_dist}"
MNIST_PREPARE="${MNIST_PREPARE:-$REPO/build/mnist_prepare}"
[[ ! -e "$MNIST_DIST" ]] || MNIST_DIST="$(readlink -f "$MNIST_DIST")"
[[ ! -e "$MNIST_PREPARE" ]] || MNIST_PREPARE="$(readlink -f "$MNIST_PREPARE")"
export MNIST_DIST MNIST_PREPARE
# Each test its own cluster name and subnet, so that two tests never share hosts.
export NETNS_CLUSTER_NAME="${NETNS_CLUSTER_NAME:-mdt}"
export NETNS_CLUSTER_SUBNET="${NETNS_CLUSTER_SUBNET:-10.77.9}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Two cores for up to 4 ranks: idle ranks yield (as cluster/slurm/train.sbatch does).
export OMPI_MCA_mpi_yield_when_idle=1

say() { echo "$PROG: [${SECONDS}s] $*"; }
fail() { echo "FAIL: $PROG: $*" >&2; exit 1; }
skip() { echo "SKIP: $PROG: $*" >&2; exit 77; }

# Skips (exit 77) with the reason when this machine cannot make namespace hosts.
require_namespaces() {
  [[ "$(id -u)" -eq 0 ]] || skip "needs root (network namespaces, a bridge and /etc/hosts entries)"
  command -v ip >/dev/null || skip "'ip' (iproute2) is not installed"
  command -v nsenter >/dev/null && command -v unshare >/dev/null || skip "nsenter/unshare (util-linux) not installed"
  local probe="${NETNS_CLUSTER_NAME}probe" err
  if ! err="$(ip netns add "$probe" 2>&1)"; then
    skip "this machine cannot make network namespaces ('ip netns add' failed: $err)"
  fi
  ip netns del "$probe" 2>/dev/null || true
  if ! err="$(ip link add "${NETNS_CLUSTER_NAME}probe0" type bridge 2>&1)"; then
    skip "this machine cannot make a bridge ('ip link add type bridge' failed: $err)"
  fi
  ip link del "${NETNS_CLUSTER_NAME}probe0" 2>/dev/null || true
}

require_mpirun() {
  command -v mpirun >/dev/null || skip "mpirun (openmpi-bin) is not installed"
}

WORK=""
cluster_started=0
EXTRA_CLEANUP=""   # a function name the test may set; run first on exit, with the exit code
cleanup() {
  local rc=$?
  [[ -z "$EXTRA_CLEANUP" ]] || "$EXTRA_CLEANUP" "$rc" || true
  if ((cluster_started)); then "$CLUSTER" down || echo "$PROG: warning: netns_cluster.sh down failed" >&2; fi
  if [[ -n "$WORK" ]]; then
    if ((rc != 0)) || [[ "${KEEP:-0}" == 1 ]]; then echo "$PROG: work directory kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

make_work() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/multinode_${PROG%%.*}.XXXXXX")"
  chmod 0755 "$WORK"
}

cluster_up() {  # N
  # A run of this test that was SIGKILLed (no trap) left its hosts: its own state names them.
  if "$CLUSTER" status >/dev/null 2>&1; then say "removing the hosts a killed earlier run left"; "$CLUSTER" down; fi
  cluster_started=1
  "$CLUSTER" up "$1" || fail "netns_cluster.sh up $1 failed"
}

# mpirun_hosts SLOTS_PER_HOST NP ARGS...: mpirun across the cluster's hosts, SLOTS per host.
mpirun_hosts() {
  local slots="$1" np="$2"; shift 2
  "$CLUSTER" hostfile "$slots" >/dev/null
  # shellcheck disable=SC2046
  mpirun $("$CLUSTER" mpirun-args) --oversubscribe --bind-to none -np "$np" "$@"
}
