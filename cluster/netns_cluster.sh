#!/usr/bin/env bash
# netns_cluster.sh: a cluster of N "hosts" on this machine, each a Linux network namespace with its
# own address on a private bridge and its own hostname (a UTS namespace per command), for multi-node
# Open MPI / Slurm tests. Follows ../../shared/MULTINODE_NOTES.md. Needs root and `ip netns`.
#
# Usage: cluster/netns_cluster.sh [--name NAME] [--subnet A.B.C] [--mtu BYTES] COMMAND
#   up N            make bridge NAMEbr0 (A.B.C.254/24) and hosts NAME1..NAMEN (A.B.C.1..N), add
#                   "A.B.C.i NAMEi" lines to /etc/hosts, write the rsh agent and the hostfile;
#                   refuses a subnet this machine already uses; undoes its own work if it fails;
#                   --mtu sets the links' MTU (e.g. 9000, jumbo frames as MPI clusters use;
#                   default the kernel's 1500)
#   down            kill what still runs in the hosts, delete the namespaces, veths, bridge and the
#                   /etc/hosts lines this cluster added (nothing else), remove the state directory
#   run HOST CMD..  run CMD in HOST's network namespace with hostname HOST (mounts are shared)
#   status          hosts, addresses and processes; exit 0 when up, 3 when not
#   hosts           the host names, one a line
#   hostfile SLOTS  write DIR/hostfile with SLOTS slots per host; print its path
#   mpirun-args     the mpirun options that launch across the hosts (agent, interfaces, btl)
#   pids HOST       the pids of every process in HOST's network namespace
#   kill HOST [SIG] send SIG (default KILL) to every process of HOST ("lose a node")
#   shape RATE [DELAY] | shape off
#                   limit every host's link to RATE (tc units: 1gbit, 10gbit, 25gbit) in both
#                   directions (a tbf on the host's eth0 and on its bridge-side veth); DELAY (e.g.
#                   200us) adds netem delay, where the kernel has the netem qdisc; off removes both
#   agent HOST ...  the rsh agent itself (Open MPI's plm_rsh_agent): enters HOST, runs the rest
#                   as a shell command, as ssh would
# Environment: NETNS_CLUSTER_NAME (default mdc; 2-8 chars [a-z][a-z0-9]*), NETNS_CLUSTER_SUBNET
#   (default 10.77.0; a /24 nobody here uses), NETNS_CLUSTER_MTU (as --mtu), NETNS_CLUSTER_DIR (state,
#   default /tmp/mnist_dist_netns).
# Exit: 0 ok, 1 failure, 2 usage / bad input, 3 (status) not up.
set -euo pipefail

PROG=netns_cluster.sh
SELF="$(readlink -f "${BASH_SOURCE[0]}")"
NAME="${NETNS_CLUSTER_NAME:-mdc}"
SUBNET="${NETNS_CLUSTER_SUBNET:-10.77.0}"
MTU="${NETNS_CLUSTER_MTU:-}"
BASE="${NETNS_CLUSTER_DIR:-/tmp/mnist_dist_netns}"

usage() { echo "Usage: cluster/$PROG [--name NAME] [--subnet A.B.C] [--mtu BYTES] up N|down|run HOST CMD...|status|hosts|hostfile SLOTS|mpirun-args|pids HOST|kill HOST [SIG]|shape RATE [DELAY]|shape off"; }
say() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $1" >&2; exit "${2:-1}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) [[ $# -ge 2 ]] || die "--name needs a value" 2; NAME="$2"; shift 2 ;;
    --subnet) [[ $# -ge 2 ]] || die "--subnet needs a value" 2; SUBNET="$2"; shift 2 ;;
    --mtu) [[ $# -ge 2 ]] || die "--mtu needs a value" 2; MTU="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$SELF"; exit 0 ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || { usage >&2; exit 2; }
cmd="$1"; shift

[[ "$NAME" =~ ^[a-z][a-z0-9]{1,7}$ ]] || die "cluster name '$NAME' must be 2-8 characters [a-z][a-z0-9]* (it prefixes interface names)" 2
[[ "$SUBNET" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "subnet '$SUBNET' must be three octets, e.g. 10.77.0" 2
for o in "${BASH_REMATCH[@]:1}"; do ((o <= 255)) || die "subnet '$SUBNET': octet $o > 255" 2; done
if [[ -n "$MTU" ]]; then
  [[ "$MTU" =~ ^[1-9][0-9]{2,4}$ ]] && ((MTU >= 1280 && MTU <= 65535)) ||
    die "--mtu '$MTU' must be a number of bytes from 1280 to 65535 (e.g. 9000)" 2
fi

DIR="$BASE/$NAME"
BRIDGE="${NAME}br0"
MARK="# netns_cluster:$NAME"          # tags this cluster's /etc/hosts lines
HOSTS_FILE="${NETNS_CLUSTER_HOSTS_FILE:-/etc/hosts}"

need_root() {
  [[ "$(id -u)" -eq 0 ]] || die "needs root (network namespaces, a bridge, /etc/hosts)" 2
  command -v ip >/dev/null || die "'ip' not found (apt-get install iproute2)" 2
  command -v nsenter >/dev/null && command -v unshare >/dev/null || die "nsenter/unshare not found (util-linux)" 2
}

hosts() { [[ -f "$DIR/hosts" ]] && cat "$DIR/hosts"; return 0; }
is_host() { [[ -f "$DIR/hosts" ]] && grep -qx -- "$1" "$DIR/hosts"; }
check_host() { is_host "$1" || die "'$1' is not a host of cluster '$NAME' (hosts: $(hosts | tr '\n' ' '))" 2; }

# enter HOST CMD...: CMD in HOST's network namespace, in a new UTS namespace named HOST. nsenter
# (not `ip netns exec`, which remounts /sys and hides /sys/fs/cgroup from slurmd) keeps the mounts:
# the file system, /dev/shm and the binaries are shared, as on a cluster with a shared file system.
enter() {
  local h="$1"; shift
  exec nsenter --net="/run/netns/$h" unshare --uts /bin/sh -c 'hostname "$0" && exec "$@"' "$h" "$@"
}

# in_host HOST CMD...: CMD in HOST's network namespace only (no new UTS namespace). Not `ip netns
# exec` / `ip -n`: they remount / and /sys, which fails in a chroot ("mount --make-rslave /").
in_host() { local h="$1"; shift; nsenter --net="/run/netns/$h" "$@"; }

# ---- up / down ---------------------------------------------------------------------------------
# Everything made is recorded in $DIR/created (one "kind name" a line) before it is made, so that
# down (and a failed up) removes exactly that, in reverse order.
record() { echo "$1 $2" >>"$DIR/created"; }

remove_hosts_lines() {
  [[ -f "$HOSTS_FILE" ]] || return 0
  grep -qF -- "$MARK" "$HOSTS_FILE" || return 0
  # In place (not a rename): /etc/hosts may be a bind mount (containers).
  local kept; kept="$(grep -vF -- "$MARK" "$HOSTS_FILE" || true)"
  printf '%s\n' "$kept" >"$HOSTS_FILE"
}

kill_host_processes() {  # HOST SIGNAL
  local pids; pids="$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')"
  [[ -n "${pids// /}" ]] || return 0
  # shellcheck disable=SC2086
  kill "-$2" $pids 2>/dev/null || true
}

do_down() {
  [[ -f "$DIR/created" ]] || { say "cluster '$NAME' is not up (no $DIR/created)"; rm -rf "$DIR"; return 0; }
  local kind what h i
  # Processes first (TERM, then KILL after up to 3 s), so that namespaces can go.
  for h in $(hosts); do ip netns list | grep -qw -- "$h" && kill_host_processes "$h" TERM; done
  for i in $(seq 30); do
    local left=""
    for h in $(hosts); do left+="$(ip netns pids "$h" 2>/dev/null)"; done
    [[ -z "$left" ]] && break
    sleep 0.1
  done
  for h in $(hosts); do kill_host_processes "$h" KILL; done
  tac "$DIR/created" | while read -r kind what; do
    case "$kind" in
      netns) ip netns del "$what" 2>/dev/null || say "warning: could not delete netns $what" ;;
      link) if ip link show "$what" >/dev/null 2>&1; then ip link del "$what" || say "warning: could not delete link $what"; fi ;;
      hosts) remove_hosts_lines ;;
    esac
  done
  rm -rf "$DIR"
  say "cluster '$NAME' is down"
}

subnet_in_use() {
  ip -4 -o addr show | awk '{print $4}' | grep -q "^${SUBNET//./\\.}\." && return 0
  ip -4 route show | awk '{print $1}' | grep -q "^${SUBNET//./\\.}\." && return 0
  return 1
}

do_up() {
  local n="${1:-}"
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 200)) || die "up needs a host count 1-200 (got '${n}')" 2
  [[ ! -e "$DIR/created" ]] || die "cluster '$NAME' is already up (state in $DIR); run 'down' first" 2
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "a link named $BRIDGE exists and is not ours; pick another --name" 2
  for i in $(seq "$n"); do
    ip netns list | grep -qw -- "$NAME$i" && die "a network namespace $NAME$i exists and is not ours; pick another --name" 2
    grep -qw -- "$NAME$i" "$HOSTS_FILE" 2>/dev/null && die "$HOSTS_FILE already names a host $NAME$i; pick another --name" 2
  done
  subnet_in_use && die "subnet $SUBNET.0/24 is already used on this machine; pick another with --subnet" 2
  mkdir -p "$DIR"
  : >"$DIR/created"
  : >"$DIR/hosts"
  trap 'rc=$?; if ((rc != 0)); then say "up failed; undoing"; do_down; fi; exit $rc' EXIT
  trap 'exit 130' INT TERM
  record link "$BRIDGE"
  ip link add "$BRIDGE" type bridge
  [[ -z "$MTU" ]] || ip link set "$BRIDGE" mtu "$MTU"
  ip addr add "$SUBNET.254/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  record hosts "$HOSTS_FILE"
  local lines=""
  for i in $(seq "$n"); do
    local h="$NAME$i"
    record netns "$h"
    ip netns add "$h"
    record link "${NAME}v$i"
    ip link add "${NAME}v$i" type veth peer name eth0 netns "$h"
    if [[ -n "$MTU" ]]; then ip link set "${NAME}v$i" mtu "$MTU"; in_host "$h" ip link set eth0 mtu "$MTU"; fi
    ip link set "${NAME}v$i" master "$BRIDGE" up
    in_host "$h" ip addr add "$SUBNET.$i/24" dev eth0
    in_host "$h" ip link set eth0 up
    in_host "$h" ip link set lo up
    echo "$h" >>"$DIR/hosts"
    lines+="$SUBNET.$i $h $MARK"$'\n'
  done
  # (a hosts file without a final newline gets one, so that our lines start on their own)
  if [[ -s "$HOSTS_FILE" && -n "$(tail -c 1 "$HOSTS_FILE")" ]]; then echo >>"$HOSTS_FILE"; fi
  printf '%s' "$lines" >>"$HOSTS_FILE"
  echo "$SUBNET" >"$DIR/subnet"
  # The rsh agent Open MPI calls as `agent HOST [options] CMD...`.
  printf '#!/bin/sh\nexec %q --name %q --subnet %q agent "$@"\n' "$SELF" "$NAME" "$SUBNET" >"$DIR/rsh_agent"
  chmod 0755 "$DIR/rsh_agent"
  write_hostfile 1 >/dev/null
  trap - EXIT INT TERM
  say "cluster '$NAME' is up: $n host(s) $(hosts | tr '\n' ' ')on $BRIDGE $SUBNET.0/24 (state in $DIR)"
}

write_hostfile() {
  local slots="$1" h
  [[ "$slots" =~ ^[0-9]+$ ]] && ((slots >= 1)) || die "hostfile needs a slot count >= 1 (got '$slots')" 2
  : >"$DIR/hostfile"
  for h in $(hosts); do echo "$h slots=$slots" >>"$DIR/hostfile"; done
  echo "$DIR/hostfile"
}

# ---- shape: a slower, longer link (tc) ---------------------------------------------------------
# Both ends of each host's veth get a tbf at RATE, as a host's NIC limits both directions: eth0
# (inside the host) limits what the host sends, NAMEvI (on the bridge) what it receives. The delay
# goes on eth0 only, so that a packet from host to host is delayed once (DELAY one way).
shape_dev() {  # HOST|"" DEV RATE DELAY
  local h="$1" dev="$2" rate="$3" delay="$4" tcx=(tc)
  [[ -z "$h" ]] || tcx=(in_host "$h" tc)
  if [[ "$rate" == off ]]; then "${tcx[@]}" qdisc del dev "$dev" root 2>/dev/null || true; return 0; fi
  local bytes_per_s burst
  bytes_per_s="$(rate_bytes "$rate")"
  # A bucket of 2 ms at RATE (at least 128 KB: veth sends 64 KB GSO packets), so that the
  # 1 ms timer tick cannot starve a fast link.
  burst=$((bytes_per_s / 500)); ((burst >= 131072)) || burst=131072
  if [[ -n "$delay" ]]; then
    "${tcx[@]}" qdisc del dev "$dev" root 2>/dev/null || true
    "${tcx[@]}" qdisc add dev "$dev" root handle 1: netem delay "$delay" limit 100000
    "${tcx[@]}" qdisc add dev "$dev" parent 1:1 handle 10: tbf rate "$rate" burst "$burst" latency 100ms
  else
    "${tcx[@]}" qdisc replace dev "$dev" root handle 1: tbf rate "$rate" burst "$burst" latency 100ms
  fi
}

rate_bytes() {  # tc rate (Nkbit|Nmbit|Ngbit|Nbit) -> bytes per second
  [[ "$1" =~ ^([0-9]+)(bit|kbit|mbit|gbit)$ ]] || die "rate '$1' must be a number with bit, kbit, mbit or gbit (e.g. 10gbit)" 2
  local n="${BASH_REMATCH[1]}" mult=1
  case "${BASH_REMATCH[2]}" in kbit) mult=1000 ;; mbit) mult=1000000 ;; gbit) mult=1000000000 ;; esac
  echo $((n * mult / 8))
}

do_shape() {
  [[ $# -ge 1 && $# -le 2 ]] || die "shape needs RATE [DELAY] or off" 2
  local rate="$1" delay="${2:-}" i=0 h
  if [[ "$rate" != off ]]; then
    rate_bytes "$rate" >/dev/null
    [[ -z "$delay" || "$delay" =~ ^[0-9]+(us|ms)$ ]] || die "delay '$delay' must be like 200us or 1ms" 2
  fi
  command -v tc >/dev/null || die "'tc' not found (apt-get install iproute2)" 2
  # Probed in a throwaway network namespace, so that a kernel without netem leaves the links as
  # they were.
  if [[ -n "$delay" ]] && ! unshare --net sh -c 'ip link add mdprobe0 type veth peer name mdprobe1 &&
       tc qdisc add dev mdprobe0 root netem delay 1ms' >/dev/null 2>&1; then
    die "this kernel has no netem qdisc (sch_netem): a delay cannot be added; shape the rate alone (links unchanged)" 1
  fi
  for h in $(hosts); do
    i=$((i + 1))
    shape_dev "$h" eth0 "$rate" "$delay"
    shape_dev "" "${NAME}v$i" "$rate" ""
  done
  if [[ "$rate" == off ]]; then say "links of cluster '$NAME' unshaped"
  else say "links of cluster '$NAME' shaped: $rate${delay:+, $delay each way}"; fi
}

require_up() { [[ -f "$DIR/created" ]] || die "cluster '$NAME' is not up (run: cluster/$PROG --name $NAME up N)" 2; }

case "$cmd" in
  up) need_root; do_up "$@" ;;
  down) need_root; do_down ;;
  run)
    need_root; require_up
    [[ $# -ge 2 ]] || die "run needs HOST and a command" 2
    check_host "$1"
    enter "$@" ;;
  agent)
    # Open MPI: agent HOST [ssh-style options] command words (a shell command, as for ssh).
    [[ $# -ge 1 ]] || die "agent needs HOST" 2
    h="$1"; shift
    while [[ $# -gt 0 && "$1" == -* ]]; do shift; done
    check_host "$h"
    enter "$h" /bin/sh -c "$*" ;;
  status)
    [[ -f "$DIR/created" ]] || { echo "cluster '$NAME': down"; exit 3; }
    echo "cluster '$NAME': up; bridge $BRIDGE $(cat "$DIR/subnet").254/24; state $DIR"
    for h in $(hosts); do
      a="$(in_host "$h" ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}')"
      echo "  $h ${a:-NO-ADDRESS} processes: $(ip netns pids "$h" 2>/dev/null | wc -l)"
    done ;;
  hosts) require_up; hosts ;;
  hostfile) require_up; write_hostfile "${1:-1}" ;;
  mpirun-args)
    require_up
    s="$(cat "$DIR/subnet").0/24"
    echo "--hostfile $DIR/hostfile --mca plm_rsh_agent $DIR/rsh_agent --mca plm_rsh_no_tree_spawn 1" \
         "--mca oob_tcp_if_include $s --mca btl_tcp_if_include $s --mca btl self,vader,tcp" ;;
  pids) need_root; require_up; [[ $# -eq 1 ]] || die "pids needs HOST" 2; check_host "$1"; ip netns pids "$1" ;;
  kill)
    need_root; require_up
    [[ $# -ge 1 ]] || die "kill needs HOST" 2
    check_host "$1"
    kill_host_processes "$1" "${2:-KILL}" ;;
  shape) need_root; require_up; do_shape "$@" ;;
  *) usage >&2; die "unknown command '$cmd'" 2 ;;
esac
