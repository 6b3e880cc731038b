#!/usr/bin/env bash
# test_netns_cluster.sh: cluster/netns_cluster.sh itself. up 3 makes three hosts with their own
# address and hostname, /etc/hosts resolves them, an MPI job over TCP spans them (3 distinct
# hostnames, all-reduce sum 6), `kill HOST` ends that host's processes only, bad input is exit 2
# with nothing made, a failing up undoes itself, and down leaves the machine as it found it
# (/etc/hosts byte-identical, no namespace, link or state left).
# Usage: tests/multinode/test_netns_cluster.sh   (root; env MPI_HELLO=path of mpi_hello)
# Exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
PROG=test_netns_cluster.sh
export NETNS_CLUSTER_NAME=mdth NETNS_CLUSTER_SUBNET=10.77.11
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MPI_HELLO="${MPI_HELLO:-$REPO/build/tests/multinode/mpi_hello}"

require_namespaces
hosts_before="$(sha256sum /etc/hosts)"
links_before="$(ip -o link show | awk -F': ' '{print $2}' | sort)"
netns_before="$(ip netns list | sort)"

# Bad input: exit 2, nothing made.
set +e
"$CLUSTER" up 0 2>/dev/null; rc1=$?
"$CLUSTER" --subnet 127.0.0 up 2 2>/dev/null; rc2=$?    # loopback's /8 covers it: in use
"$CLUSTER" --name 'Bad!' up 2 2>/dev/null; rc3=$?
"$CLUSTER" run mdth1 true 2>/dev/null; rc4=$?            # not up
"$CLUSTER" --mtu 100 up 2 2>/dev/null; rc5=$?
set -e
[[ "$rc1 $rc2 $rc3 $rc4 $rc5" == "2 2 2 2 2" ]] ||
  fail "bad input must exit 2 (got up 0: $rc1, used subnet: $rc2, bad name: $rc3, run when down: $rc4, mtu 100: $rc5)"
[[ "$(ip netns list | sort)" == "$netns_before" ]] || fail "a refused up left a namespace behind"
say "bad input refused with exit 2"

# A failing up (the hosts file cannot be written) undoes what it made.
set +e
NETNS_CLUSTER_HOSTS_FILE=/nonexistent-dir/hosts "$CLUSTER" up 2 >/dev/null 2>&1; rc=$?
set -e
((rc != 0)) || fail "up with an unwritable hosts file succeeded"
[[ "$(ip netns list | sort)" == "$netns_before" ]] || fail "a failed up left namespaces: $(ip netns list | tr '\n' ' ')"
[[ "$(ip -o link show | awk -F': ' '{print $2}' | sort)" == "$links_before" ]] || fail "a failed up left links behind"
[[ ! -e "${NETNS_CLUSTER_DIR:-/tmp/mnist_dist_netns}/mdth" ]] || fail "a failed up left its state directory"
say "a failed up undid itself"

# --mtu: both ends of each veth and the bridge.
"$CLUSTER" --mtu 9000 up 2 >/dev/null 2>&1
cluster_started=1
mtus="$("$CLUSTER" run mdth1 ip -o link show dev eth0 | grep -o 'mtu [0-9]*') $(ip -o link show mdthv2 | grep -o 'mtu [0-9]*') $(ip -o link show mdthbr0 | grep -o 'mtu [0-9]*')"
[[ "$mtus" == "mtu 9000 mtu 9000 mtu 9000" ]] || fail "--mtu 9000: host eth0, bridge-side veth, bridge have '$mtus'"
"$CLUSTER" down >/dev/null 2>&1
cluster_started=0
say "--mtu 9000 on both ends of each link and the bridge"

cluster_up 3
for i in 1 2 3; do
  h="mdth$i"
  got="$("$CLUSTER" run "$h" sh -c 'echo "$(hostname) $(ip -4 -o addr show dev eth0 | awk "{print \$4}")"')"
  [[ "$got" == "$h 10.77.11.$i/24" ]] || fail "host $h: expected '$h 10.77.11.$i/24', got '$got'"
  [[ "$(getent hosts "$h" | awk '{print $1}')" == "10.77.11.$i" ]] || fail "/etc/hosts does not resolve $h to 10.77.11.$i"
done
[[ "$(hostname)" != mdth* ]] || fail "the root namespace's hostname changed to $(hostname)"
say "3 hosts: own hostname, own address, resolvable"

if [[ -x "$MPI_HELLO" ]] && command -v mpirun >/dev/null; then
  out="$(timeout 60 bash -c "source '$REPO/tests/multinode/lib.sh'; mpirun_hosts 1 3 '$MPI_HELLO'" 2>&1)" ||
    fail "mpirun across 3 hosts failed: $out"
  echo "$out"
  [[ "$(grep -c 'sum 6 OK' <<<"$out")" == 3 ]] || fail "expected 3 ranks with all-reduce sum 6"
  [[ "$(grep -o 'host mdth[0-9]' <<<"$out" | sort -u | wc -l)" == 3 ]] || fail "expected 3 distinct hostnames"
  # Shared memory only (no tcp) cannot cross hosts: proof that the traffic above went over the bridge.
  if timeout 60 bash -c "source '$REPO/tests/multinode/lib.sh'; mpirun_hosts 1 3 --mca btl self,vader '$MPI_HELLO'" >/dev/null 2>&1; then
    fail "an MPI job without the tcp transport ran across hosts: the hosts are not separate"
  fi
  say "MPI across 3 hosts over TCP; without tcp it cannot start"
else
  say "SKIP(mpi part): no mpirun or $MPI_HELLO"
fi

# shape: a token bucket on both ends of every link; bad input exit 2; a delay either shows netem
# on the host side or (a kernel without sch_netem) is refused with the links left as they were.
set +e
"$CLUSTER" shape fast 2>/dev/null; rc_bad=$?
set -e
[[ "$rc_bad" == 2 ]] || fail "shape with a bad rate must exit 2 (got $rc_bad)"
"$CLUSTER" shape 1gbit >/dev/null
for i in 1 2 3; do
  "$CLUSTER" run "mdth$i" tc qdisc show dev eth0 | grep -q 'tbf.*rate 1Gbit' || fail "mdth$i eth0 has no 1Gbit tbf"
  tc qdisc show dev "mdthv$i" | grep -q 'tbf.*rate 1Gbit' || fail "mdthv$i (bridge end) has no 1Gbit tbf"
done
set +e
"$CLUSTER" shape 1gbit 200us >/dev/null 2>&1; rc_delay=$?
set -e
if ((rc_delay == 0)); then
  "$CLUSTER" run mdth1 tc qdisc show dev eth0 | grep -q 'netem.*delay 200us' || fail "shape 1gbit 200us: no netem delay on mdth1"
else
  [[ "$rc_delay" == 1 ]] || fail "shape with a delay the kernel cannot do must exit 1 (got $rc_delay)"
  "$CLUSTER" run mdth1 tc qdisc show dev eth0 | grep -q 'tbf.*rate 1Gbit' || fail "a refused delay changed mdth1's link"
fi
"$CLUSTER" shape off >/dev/null
for i in 1 2 3; do
  ! "$CLUSTER" run "mdth$i" tc qdisc show dev eth0 | grep -qE 'tbf|netem' || fail "shape off left a qdisc on mdth$i"
  ! tc qdisc show dev "mdthv$i" | grep -qE 'tbf|netem' || fail "shape off left a qdisc on mdthv$i"
done
say "shape: tbf on both ends of each link, delay $( ((rc_delay == 0)) && echo applied || echo 'refused (no netem), links unchanged'), off clears, bad rate exit 2"

# kill HOST: that host's processes end, the others live.
"$CLUSTER" run mdth2 sleep 300 &
"$CLUSTER" run mdth3 sleep 300 &
for _ in $(seq 50); do [[ -n "$("$CLUSTER" pids mdth2)" && -n "$("$CLUSTER" pids mdth3)" ]] && break; sleep 0.1; done
"$CLUSTER" kill mdth2
sleep 0.5
[[ -z "$("$CLUSTER" pids mdth2)" ]] || fail "kill mdth2 left processes: $("$CLUSTER" pids mdth2)"
[[ -n "$("$CLUSTER" pids mdth3)" ]] || fail "kill mdth2 also ended mdth3's process"
say "kill mdth2 ended its processes only"

# down (with mdth3's sleep still running) leaves nothing.
"$CLUSTER" down
cluster_started=0
wait || true
[[ "$(sha256sum /etc/hosts)" == "$hosts_before" ]] || fail "/etc/hosts differs after down"
[[ "$(ip netns list | sort)" == "$netns_before" ]] || fail "namespaces left after down: $(ip netns list | tr '\n' ' ')"
[[ "$(ip -o link show | awk -F': ' '{print $2}' | sort)" == "$links_before" ]] || fail "links left after down"
set +e; "$CLUSTER" status >/dev/null; rc=$?; set -e
((rc == 3)) || fail "status after down: exit $rc, expected 3"
say "down: /etc/hosts, namespaces and links as before"
echo "PASS: $PROG"
