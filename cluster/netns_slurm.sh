#!/usr/bin/env bash
# netns_slurm.sh: a real N-node Slurm on this machine: the hosts of cluster/netns_cluster.sh, one
# slurmd per host (its own network namespace and hostname), slurmctld in the root namespace at the
# bridge address, a private munged. As root, without systemd; daemons in the foreground under
# setsid, stopped by their recorded pids. Follows ../../shared/multinode-slurm/README.md and its
# three traps (nsenter, not `ip netns exec`; a TmpFS per node; a killed node's spool cleared).
#
# Usage: cluster/netns_slurm.sh up N | down [--keep] | status | env | logs | kill-node HOST | restart-node HOST
#   up N             netns_cluster.sh up N (hosts <name>1..N), slurm.conf, munged, slurmctld,
#                    slurmd per host; waits (bounded) until all N nodes are idle
#   down             cancel jobs, stop the daemons by pid, netns_cluster.sh down, delete DIR
#   status           daemons, sinfo, squeue; exit 0 when up, 3 when not
#   env              print 'export SLURM_CONF=…'
#   logs             the last lines of every daemon log
#   kill-node HOST   SIGKILL every process of HOST (slurmd, slurmstepd, tasks): a lost node
#   restart-node HOST  clear HOST's spool and TmpFS, start its slurmd, wait until it is idle
# Environment: NETNS_SLURM_DIR (default /tmp/mnist_dist_netns_slurm), NETNS_SLURM_NAME (host name
#   prefix, default mds), NETNS_SLURM_SUBNET (default 10.78.0), NETNS_SLURM_CPUS (CPUs per node,
#   default 2), NETNS_SLURM_TIMEOUT (s per wait, default 30), NETNS_SLURM_SLURMD_TIMEOUT
#   (SlurmdTimeout: a lost node is marked down after it; default 10, Slurm's own default is 300).
# Ports 6817 (slurmctld, root namespace) and 6818 (slurmd, in each host) must be free.
set -euo pipefail
# shellcheck source=cluster/slurm_conf_common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/slurm_conf_common.sh"

PROG=netns_slurm.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${NETNS_SLURM_DIR:-/tmp/mnist_dist_netns_slurm}"
NAME="${NETNS_SLURM_NAME:-mds}"
SUBNET="${NETNS_SLURM_SUBNET:-10.78.0}"
CPUS="${NETNS_SLURM_CPUS:-2}"
TIMEOUT="${NETNS_SLURM_TIMEOUT:-30}"
SLURMD_TIMEOUT="${NETNS_SLURM_SLURMD_TIMEOUT:-10}"
CTL="${NAME}ctl"
CONF="$DIR/etc/slurm.conf"
SOCKET="$DIR/munge/munge.socket"
export SLURM_CONF="$CONF"
CLUSTER=("$HERE/netns_cluster.sh" --name "$NAME" --subnet "$SUBNET")
export NETNS_CLUSTER_DIR="$DIR/netns"
MARK="# netns_slurm:$NAME"

usage() { sed -n '8,16p' "$0" | sed 's/^# \{0,1\}//'; }
say() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $1" >&2; exit "${2:-1}"; }

pid_of() { [[ -f "$DIR/pids/$1.pid" ]] && cat "$DIR/pids/$1.pid"; return 0; }
alive() {  # NAME: the recorded pid runs (guards against pid reuse by its command line)
  local pid; pid="$(pid_of "$1")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE -- "munged|slurmctld|slurmd"
}
start() {  # NAME CMD...: a foreground daemon in its own session, its pid recorded
  local name="$1"; shift
  setsid "$@" >>"$DIR/log/$name.stderr" 2>&1 </dev/null &
  echo "$!" >"$DIR/pids/$name.pid"
}
stop() {
  local name="$1" pid i
  pid="$(pid_of "$name")"
  if alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$name" || break; sleep 0.1; done
    alive "$name" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/pids/$name.pid"
}
wait_for() {  # NAME WHAT CMD...: poll CMD every 0.1 s, at most $TIMEOUT s
  local name="$1" what="$2"; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || { log_tail 30; die "$name exited while waiting for $what (logs in $DIR/log)"; }
    ((SECONDS < deadline)) || { log_tail 30; die "timed out after ${TIMEOUT}s waiting for $what"; }
    sleep 0.1
  done
}
log_tail() {
  local f
  for f in "$DIR"/log/* "$DIR"/nodes/*/slurmd.log; do
    [[ -s "$f" ]] || continue
    echo "---- ${f#"$DIR"/} (last ${1:-15} lines) ----" >&2
    tail -n "${1:-15}" "$f" >&2
  done
}
hosts() { cat "$DIR/hosts" 2>/dev/null; }
ctld_up() { scontrol ping 2>/dev/null | grep -q "is UP"; }
munge_ok() { munge -n -S "$SOCKET" | unmunge -S "$SOCKET"; }
all_idle() { [[ "$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle$')" == "$(hosts | wc -l)" ]]; }
node_ready() { [[ "$(sinfo -h -N -n "$1" -o %t 2>/dev/null)" =~ ^(idle|alloc|mix)$ ]]; }

write_config() {
  local n="$1" i
  cat >"$CONF" <<EOF
# Multi-node Slurm on network-namespace hosts, written by cluster/$PROG. Everything under $DIR.
ClusterName=mnistdistnetns
SlurmctldHost=$CTL($SUBNET.254)
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$DIR/state
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
# %n = the node name given to slurmd -N: spool, pid, log and TmpFS per node. The pmix plugin puts
# its client directory under TmpFS; with one shared /tmp the nodes collide ("File exists").
SlurmdSpoolDir=$DIR/nodes/%n/spool
SlurmdPidFile=$DIR/nodes/%n/slurmd.pid
SlurmdLogFile=$DIR/nodes/%n/slurmd.log
TmpFS=$DIR/nodes/%n/tmp
# A lost node is noticed after SlurmdTimeout (Slurm's default: 300 s).
SlurmdTimeout=$SLURMD_TIMEOUT
MessageTimeout=5
InactiveLimit=0
$(slurm_conf_common "$SOCKET")
EOF
  for i in $(seq "$n"); do
    echo "NodeName=$NAME$i NodeAddr=$SUBNET.$i NodeHostname=$NAME$i CPUs=$CPUS RealMemory=2000 State=UNKNOWN" >>"$CONF"
  done
  echo "PartitionName=debug Nodes=${NAME}[1-$n] Default=YES MaxTime=INFINITE State=UP" >>"$CONF"
}

start_slurmd() {
  local h="$1"
  rm -rf "$DIR/nodes/$h/spool" "$DIR/nodes/$h/tmp" "$DIR/nodes/$h/slurmd.pid"
  mkdir -p "$DIR/nodes/$h/spool" "$DIR/nodes/$h/tmp"
  start "slurmd-$h" "${CLUSTER[@]}" run "$h" slurmd -D -N "$h" -f "$CONF"
  # Record slurmd's own pid from its pid file: the pid of the launch above is slurmd's only when
  # no step of the chain forks (in CI's fresh root one did: the recorded pid had exited).
  local i pid
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    pid="$(cat "$DIR/nodes/$h/slurmd.pid" 2>/dev/null || true)"
    if [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "slurmd .*-N $h "; then
      echo "$pid" >"$DIR/pids/slurmd-$h.pid"
      return 0
    fi
    sleep 0.1
  done
  log_tail 30
  die "slurmd of $h did not start (no live pid in $DIR/nodes/$h/slurmd.pid after ${TIMEOUT}s)"
}

cmd_up() {
  local n="${1:-}"
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 64)) || die "up needs a node count 1-64 (got '$n')" 2
  [[ "$(id -u)" -eq 0 ]] || die "needs root (namespaces; slurmd runs jobs as any user)" 2
  for c in slurmctld slurmd munged sinfo; do command -v "$c" >/dev/null || die "$c not found (apt-get install slurm-wlm munge)" 2; done
  [[ ! -d "$DIR/pids" ]] || die "a Slurm already runs from $DIR ('$PROG status' / '$PROG down')" 2
  if command -v ss >/dev/null && ss -Hltn 'sport = :6817' | grep -q .; then
    die "TCP port 6817 (slurmctld) is in use on this machine: $(ss -Hltnp 'sport = :6817' | head -n 1)" 2
  fi
  local t0=$SECONDS h
  mkdir -p "$DIR"/{etc,state,run,log,pids}
  chmod 0755 "$DIR"
  trap 'rc=$?; if ((rc != 0)); then say "up failed; stopping what started"; cmd_down; fi; exit $rc' EXIT
  trap 'exit 130' INT TERM
  "${CLUSTER[@]}" up "$n"
  "${CLUSTER[@]}" hosts >"$DIR/hosts"
  # The controller's name, resolvable like the nodes' (tagged, removed by down).
  echo "$SUBNET.254 $CTL $MARK" >>/etc/hosts
  install -d -m 0755 "$DIR/munge"
  install -d -m 0700 "$DIR/munge-key"
  dd if=/dev/urandom of="$DIR/munge-key/munge.key" bs=1024 count=1 status=none
  chmod 0600 "$DIR/munge-key/munge.key"
  write_config "$n"
  # One munged serves every host: a unix socket with a path is reachable from every namespace.
  start munged munged --foreground --force --socket="$SOCKET" --key-file="$DIR/munge-key/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  wait_for munged "munged" munge_ok
  start slurmctld unshare --uts /bin/sh -c 'hostname "$0" && exec slurmctld -D -f "$1"' "$CTL" "$CONF"
  wait_for slurmctld "slurmctld to answer 'scontrol ping'" ctld_up
  for h in $(hosts); do start_slurmd "$h"; done
  wait_for slurmctld "all $n nodes idle in sinfo" all_idle
  trap - EXIT INT TERM
  say "up in $((SECONDS - t0)) s: nodes $(hosts | tr '\n' ' ')(${CPUS} CPUs each), slurmctld $CTL at $SUBNET.254"
  say "use it with:  export SLURM_CONF=$CONF"
}

cmd_down() {
  [[ -d "$DIR" ]] || { say "nothing to stop: $DIR does not exist"; return 0; }
  if alive slurmctld && ctld_up; then
    local jobs i
    jobs="$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')"
    if [[ -n "${jobs// /}" ]]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break; sleep 0.1; done
    fi
  fi
  local f
  for f in "$DIR"/pids/slurmd-*.pid; do [[ -e "$f" ]] && stop "$(basename "$f" .pid)"; done
  stop slurmctld
  stop munged
  # netns_cluster.sh down kills whatever still runs in the hosts (slurmstepd, tasks).
  "${CLUSTER[@]}" down || say "warning: netns_cluster.sh down failed"
  if grep -qF -- "$MARK" /etc/hosts; then
    local kept; kept="$(grep -vF -- "$MARK" /etc/hosts || true)"
    printf '%s\n' "$kept" >/etc/hosts
  fi
  if ((keep)); then say "stopped; state and logs kept in $DIR"; else rm -rf "$DIR"; say "stopped; removed $DIR"; fi
}

keep=0
[[ $# -ge 1 ]] || { usage >&2; exit 2; }
cmd="$1"; shift
[[ "${1:-}" == --keep ]] && { keep=1; shift; }
case "$cmd" in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  status)
    up=1
    for f in munged slurmctld $(hosts | sed 's/^/slurmd-/'); do
      if alive "$f"; then echo "$f: running (pid $(pid_of "$f"))"; else echo "$f: not running"; up=0; fi
    done
    [[ -d "$DIR/pids" ]] || up=0
    echo "SLURM_CONF=$CONF"
    if alive slurmctld; then sinfo -N || true; squeue || true; fi
    ((up)) || exit 3 ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  logs) log_tail 40 ;;
  kill-node)
    [[ $# -eq 1 ]] || die "kill-node needs HOST" 2
    hosts | grep -qx -- "$1" || die "'$1' is not a node here ($(hosts | tr '\n' ' '))" 2
    "${CLUSTER[@]}" kill "$1" KILL ;;
  restart-node)
    [[ $# -eq 1 ]] || die "restart-node needs HOST" 2
    hosts | grep -qx -- "$1" || die "'$1' is not a node here ($(hosts | tr '\n' ' '))" 2
    [[ -z "$("${CLUSTER[@]}" pids "$1")" ]] || die "$1 still has processes (kill-node $1 first)" 2
    start_slurmd "$1"
    wait_for "slurmd-$1" "$1 to be idle again" node_ready "$1"
    say "$1 is back" ;;
  -h|--help) usage ;;
  *) usage >&2; die "unknown command '$cmd'" 2 ;;
esac
