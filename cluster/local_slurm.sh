#!/usr/bin/env bash
# local_slurm.sh: a throwaway single-node Slurm on this machine (Debian's slurm-wlm + munge), as
# root and without systemd, for tests and for trying the batch scripts. Config, state, sockets,
# pids and logs all live under one directory; the daemons run in the foreground under setsid and
# are stopped by the pids recorded at start, never by name. Follows ../../shared/SLURM_NOTES.md.
#
# Usage: cluster/local_slurm.sh up|down|status|env|logs [--dir DIR] [--keep]
#   up      install slurm-wlm + munge if missing, check ports, write slurm.conf, start a private
#           munged, slurmctld and slurmd, wait (bounded) until the node is idle
#   down    cancel all jobs, stop the daemons by their recorded pids, delete DIR (--keep keeps it)
#   status  daemons, sinfo and squeue; exit 0 when up, 3 when not
#   env     print 'export SLURM_CONF=…' (use: eval "$(cluster/local_slurm.sh env)")
#   logs    print the last lines of every daemon log
# Environment (knobs):
#   LOCAL_SLURM_DIR      state directory (default ${TMPDIR:-/tmp}/mnist_dist_local_slurm)
#   LOCAL_SLURM_CPUS     CPUs the node advertises (default 4: 4 tasks fit on 2 cores)
#   LOCAL_SLURM_MEM_MB   RealMemory of the node (default 4000)
#   LOCAL_SLURM_PORTS    "slurmctld slurmd" TCP ports (default "6817 6818"; must be free)
#   LOCAL_SLURM_TIMEOUT  seconds to wait for each daemon to become ready (default 30)
#   LOCAL_SLURM_PORT_WAIT  seconds to wait for busy ports to free up before failing (default 0;
#                        the tests use 120 so that two test runs on one machine take turns)
#   LOCAL_SLURM_INSTALL  1: apt-get install missing packages (default), 0: fail instead
set -euo pipefail
# shellcheck source=cluster/slurm_conf_common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/slurm_conf_common.sh"

PROG=local_slurm.sh
DIR="${LOCAL_SLURM_DIR:-${TMPDIR:-/tmp}/mnist_dist_local_slurm}"
CPUS="${LOCAL_SLURM_CPUS:-4}"
MEM_MB="${LOCAL_SLURM_MEM_MB:-4000}"
read -r CTLD_PORT SLURMD_PORT <<<"${LOCAL_SLURM_PORTS:-6817 6818}"
TIMEOUT="${LOCAL_SLURM_TIMEOUT:-30}"
INSTALL="${LOCAL_SLURM_INSTALL:-1}"
PORT_WAIT="${LOCAL_SLURM_PORT_WAIT:-0}"
PACKAGES=(slurm-wlm munge)   # slurm-wlm pulls slurmctld, slurmd, slurm-client, basic plugins (pmix)

usage() { echo "Usage: cluster/$PROG up|down|status|env|logs [--dir DIR] [--keep]   (see the header for knobs)"; }
say() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $1" >&2; exit "${2:-1}"; }

cmd=""; keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    up|down|status|env|logs) [[ -z "$cmd" ]] || { usage >&2; exit 2; }; cmd="$1" ;;
    --dir) [[ $# -ge 2 ]] || die "--dir needs a directory" 2; DIR="$2"; shift ;;
    --dir=*) DIR="${1#--dir=}" ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" 2 ;;
  esac
  shift
done
[[ -n "$cmd" ]] || { usage >&2; exit 2; }
[[ "$DIR" == /* ]] || DIR="$PWD/$DIR"

CONF="$DIR/etc/slurm.conf"
SOCKET="$DIR/munge/munge.socket"
export SLURM_CONF="$CONF"
HOST="$(hostname -s)"

# ---- helpers -----------------------------------------------------------------------------------
pid_of() { if [[ -f "$DIR/pids/$1.pid" ]]; then cat "$DIR/pids/$1.pid"; fi; }

# alive NAME: the recorded pid exists and still runs the daemon called NAME (guards against reuse).
alive() {
  local pid; pid="$(pid_of "$1")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1"
}

log_tail() {
  local f
  for f in "$DIR"/log/*; do
    [[ -s "$f" ]] || continue
    echo "---- ${f#"$DIR"/} (last ${1:-15} lines) ----" >&2
    tail -n "${1:-15}" "$f" >&2
  done
}

# wait_for NAME DESCRIPTION CMD...: poll CMD every 0.1 s until it succeeds, at most $TIMEOUT s;
# fails at once if daemon NAME has exited.
wait_for() {
  local name="$1" what="$2"; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || { log_tail 30; die "$name exited during start-up (logs above, all in $DIR/log)"; }
    ((SECONDS < deadline)) || { log_tail 30; die "timed out after ${TIMEOUT}s waiting for $what"; }
    sleep 0.1
  done
}

# start NAME CMD...: run a foreground daemon in its own session, record its pid.
start() {
  local name="$1"; shift
  setsid "$@" >>"$DIR/log/$name.stderr" 2>&1 </dev/null &
  echo "$!" >"$DIR/pids/$name.pid"
}

# stop NAME: SIGTERM the recorded pid, wait up to 10 s, then SIGKILL.
stop() {
  local name="$1" pid i
  pid="$(pid_of "$name")"
  if ! alive "$name"; then rm -f "$DIR/pids/$name.pid"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$name" || break; sleep 0.1; done
  if alive "$name"; then say "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$DIR/pids/$name.pid"
}

port_busy() {  # port_busy PORT: prints the listener if the TCP port is taken
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null | grep . && return 0
    return 1
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && { echo "something accepts connections on 127.0.0.1:$1"; return 0; }
  return 1
}

ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}" slurmctld slurmd slurm-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ "$INSTALL" == 1 ]] || die "missing Debian packages: ${missing[*]} (apt-get install -y ${PACKAGES[*]})"
  say "installing ${PACKAGES[*]} with apt-get (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2; then
    say "apt-get install failed; running apt-get update and retrying"
    apt-get update -qq >&2 || true
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2 ||
      die "could not install ${PACKAGES[*]} (no network or no Debian mirror?)"
  fi
}

write_config() {
  cat >"$CONF" <<EOF
# Single-node Slurm written by cluster/$PROG (see shared/SLURM_NOTES.md). Everything under $DIR.
ClusterName=mnistdist
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
$(slurm_conf_common "$SOCKET")
EOF
}

node_idle() { [[ "$(sinfo -h -N -n "$HOST" -o %t 2>/dev/null)" == idle ]]; }
ctld_up() { scontrol ping 2>/dev/null | grep -q "is UP"; }
munge_ok() { munge -n -S "$SOCKET" | unmunge -S "$SOCKET"; }
any_alive() { alive munged || alive slurmctld || alive slurmd; }

# ---- commands ----------------------------------------------------------------------------------
cmd_up() {
  [[ "$(id -u)" -eq 0 ]] || die "must run as root (slurmd runs jobs as any user; SlurmUser=root here)"
  if [[ -d "$DIR/pids" ]] && any_alive; then
    die "a local Slurm already runs from $DIR ('$PROG status' / '$PROG down')"
  fi
  ensure_packages
  local port busy waited=0 deadline=$((SECONDS + PORT_WAIT))
  while ((SECONDS < deadline)) && { port_busy "$CTLD_PORT" || port_busy "$SLURMD_PORT"; } >/dev/null; do
    ((waited)) || say "ports $CTLD_PORT/$SLURMD_PORT are busy; waiting up to ${PORT_WAIT}s for them"
    waited=1
    sleep 1
  done
  for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if busy="$(port_busy "$port")"; then
      local pid
      pid="$(grep -o 'pid=[0-9]*' <<<"$busy" | head -n 1 | cut -d= -f2)"
      [[ -n "$pid" ]] && busy="$busy
  process $pid: $(ps -o args= -p "$pid" 2>/dev/null || echo '?')"
      die "TCP port $port is in use (needed by slurmctld/slurmd): ${busy:-?}
  Stop that process (a system Slurm: 'systemctl stop slurmctld slurmd'; a leftover local one:
  'LOCAL_SLURM_DIR=<its dir> $0 down'), or choose other ports with LOCAL_SLURM_PORTS=\"P1 P2\"."
    fi
  done
  local t0=$SECONDS
  rm -rf "$DIR"
  mkdir -p "$DIR"
  chmod 0755 "$DIR"
  mkdir -p "$DIR"/{etc,state,spool,run,log,pids}
  # munged wants its socket directory 0755 and its key readable by its owner only.
  install -d -m 0755 "$DIR/munge"
  install -d -m 0700 "$DIR/munge-key"
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile="$DIR/munge-key/munge.key" --force >/dev/null
  else
    dd if=/dev/urandom of="$DIR/munge-key/munge.key" bs=1024 count=1 status=none
  fi
  chmod 0600 "$DIR/munge-key/munge.key"
  write_config

  start munged munged --foreground --force --socket="$SOCKET" --key-file="$DIR/munge-key/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  wait_for munged "munged to answer on $SOCKET" munge_ok
  start slurmctld slurmctld -D -f "$CONF"
  wait_for slurmctld "slurmctld to answer 'scontrol ping'" ctld_up
  start slurmd slurmd -D -f "$CONF"
  wait_for slurmd "node $HOST to become idle in sinfo" node_idle
  say "up in $((SECONDS - t0))s: node $HOST ($CPUS CPUs), partition debug, state in $DIR"
  say "use it with:  export SLURM_CONF=$CONF   (or: eval \"\$($0 env --dir $DIR)\")"
}

cmd_down() {
  [[ -d "$DIR" ]] || { say "nothing to stop: $DIR does not exist"; return 0; }
  if alive slurmctld && ctld_up; then
    local jobs i
    jobs="$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')"
    if [[ -n "${jobs// /}" ]]; then
      say "cancelling jobs: $jobs"
      # shellcheck disable=SC2086  # a list of job ids
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 150; i++)); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break; sleep 0.1; done
      [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] || say "warning: jobs still listed after 15 s: $(squeue -h -o '%i %T' | tr '\n' ' ')"
    fi
  fi
  local sids=() name pid
  for name in slurmd slurmctld; do alive "$name" && sids+=("$(pid_of "$name")"); done
  stop slurmd
  stop slurmctld
  stop munged
  # Job processes (slurmstepd and its tasks) stay in the session of the slurmd that started them:
  # end any that survived the cancel, selected by that recorded session id, not by name.
  for pid in "${sids[@]}"; do
    local left
    left="$(ps -e -o pid=,sid=,stat= | awk -v s="$pid" '$2 == s && $1 != s && $3 !~ /^Z/ { print $1 }' | tr '\n' ' ')"
    if [[ -n "${left// /}" ]]; then
      say "ending leftover processes of session $pid: $left"
      # shellcheck disable=SC2086
      kill -KILL $left 2>/dev/null || true
    fi
  done
  if ((keep)); then say "stopped; state and logs kept in $DIR"; else rm -rf "$DIR"; say "stopped; removed $DIR"; fi
}

cmd_status() {
  local name up=1
  for name in munged slurmctld slurmd; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: not running"; up=0; fi
  done
  echo "SLURM_CONF=$CONF"
  if alive slurmctld; then sinfo || true; squeue || true; fi
  ((up)) || exit 3
}

case "$cmd" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  logs) [[ -d "$DIR/log" ]] || die "no logs: $DIR/log does not exist"; log_tail 40 ;;
esac
