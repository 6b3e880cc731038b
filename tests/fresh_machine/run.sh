#!/usr/bin/env bash
# run.sh: runs a command on a clean clone of this repository's committed HEAD inside a brand-new,
# minimal Debian 12 root — the machine a new user has (base system, git, sudo, ca-certificates).
# It catches install steps that pass only because a package was already installed by hand.
set -euo pipefail

PROG=tests/fresh_machine/run.sh
usage() {
  cat <<EOF
Usage: $PROG [options] -- COMMAND [ARGS...]     (as root)
  e.g. $PROG -- ./launch/quickstart.sh
       $PROG --user dev --no-cuda -- bash -c './launch/quickstart.sh && ./launch/test.sh'

Builds a minimal Debian 12 (bookworm) root with mmdebstrap from the apt sources this machine
already uses (once; cached as a tarball), unpacks a new copy, clones the committed HEAD of the
repository into it, and runs COMMAND there in a chroot (/proc, /sys, /dev mounted, stdin from
/dev/null, a clean environment). /usr/local/cuda is bind-mounted read-only when this machine has
it (a GPU node image has the toolkit). This network's own TLS certificate authorities
(/usr/local/share/ca-certificates) are copied in. The copy is removed afterwards; only the
downloaded .deb files are kept (a cache folder mounted at /var/cache/apt/archives).

Options:
  --user NAME   run COMMAND as a new user NAME with password-less sudo (default: as root)
  --no-cuda     do not mount /usr/local/cuda even when this machine has it
  --env K=V     set K=V in COMMAND's environment (repeatable)
  --timeout S   stop COMMAND after S seconds (exit 124)
  --log FILE    write COMMAND's output there too (default: \$FRESH_CACHE/logs/<time>.log)
  --keep        keep the root afterwards and print where it is
  -h, --help    this text
Environment: FRESH_CACHE (default /var/tmp/mnist_dist-fresh): the root tarball, apt-archives/, logs/.
Exit status: COMMAND's; 2 for a usage error; 125 when the fresh root could not be made.
EOF
}

die() { echo "$PROG: $1" >&2; exit "${2:-125}"; }
say() { echo "$PROG: $*"; }

user="" cuda=1 keep=0 timeout_s="" log=""
envs=()
while (($#)); do
  case "$1" in
    --user) [[ $# -ge 2 && $2 =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--user needs a user name" 2; user=$2; shift 2 ;;
    --no-cuda) cuda=0; shift ;;
    --env) [[ $# -ge 2 && $2 == *=* ]] || die "--env needs K=V" 2; envs+=("$2"); shift 2 ;;
    --timeout) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || die "--timeout needs seconds" 2; timeout_s=$2; shift 2 ;;
    --log) [[ $# -ge 2 ]] || die "--log needs a file" 2; log=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "$PROG: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
(($#)) || { usage >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "needs root (it builds a root file system and chroots into it)" 2

repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
CACHE=${FRESH_CACHE:-/var/tmp/mnist_dist-fresh}
mkdir -p "$CACHE/apt-archives/partial" "$CACHE/logs"
tarball=$CACHE/bookworm-minbase.tar
tarball_tmp=$CACHE/bookworm-minbase.partial.tar  # mmdebstrap picks the format by the extension
[[ -n $log ]] || log=$CACHE/logs/$(date +%Y%m%d-%H%M%S).log

# ---- the cached base root ------------------------------------------------------------------------
# This machine's own apt sources (deb822 *.sources or one-line sources.list), bookworm suites
# and the main component only, so no mirror host is written in the repository.
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] || continue
    awk 'BEGIN{RS=""; FS="\n"}
      { u=""; s=""; t="";
        for (i=1;i<=NF;i++) {
          if ($i ~ /^URIs:/)  { sub(/^URIs:[ \t]*/,"",$i);  u=$i }
          if ($i ~ /^Suites:/){ sub(/^Suites:[ \t]*/,"",$i); s=$i }
          if ($i ~ /^Types:/) { t=$i } }
        if (t !~ /(^|[ \t])deb([ \t]|$)/) next
        nu=split(u,U," "); ns=split(s,S," ")
        for (a=1;a<=nu;a++) for (b=1;b<=ns;b++)
          if (S[b] ~ /^bookworm/) print "deb " U[a] " " S[b] " main" }' "$f"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i !~ /^\[/) { if ($(i+1) ~ /^bookworm/) print "deb " $i " " $(i+1) " main"; break } }' \
      /etc/apt/sources.list
  fi
}

if [[ ! -s $tarball ]]; then
  command -v mmdebstrap >/dev/null ||
    { say "installing mmdebstrap"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null; } ||
    die "could not install mmdebstrap (apt-get install mmdebstrap)"
  sources=$(apt_sources | sort -u)
  [[ -n $sources ]] || die "found no bookworm apt source in /etc/apt (needed to build the root)"
  say "building a minimal Debian 12 root (once; cached in $tarball) from:"
  sed 's/^/  /' <<<"$sources"
  t0=$SECONDS
  mmdebstrap --variant=minbase --include=ca-certificates,git,sudo bookworm "$tarball_tmp" - \
    <<<"$sources" >"$CACHE/logs/mmdebstrap.log" 2>&1 ||
    { tail -n 20 "$CACHE/logs/mmdebstrap.log" >&2; rm -f "$tarball_tmp"; die "mmdebstrap failed (log: $CACHE/logs/mmdebstrap.log)"; }
  mv "$tarball_tmp" "$tarball"
  say "root built in $((SECONDS - t0)) s ($(du -h "$tarball" | cut -f1))"
fi

# ---- a new copy for this run ---------------------------------------------------------------------
root=$(mktemp -d /var/tmp/mnist_dist-fresh-root.XXXXXX)

# Mount points under the root, deepest first.
mounts_under() { awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r; }

cleanup() {
  local rc=$? pid m left
  # Processes still running inside (daemons a test started) would keep the mounts busy.
  for pid in /proc/[0-9]*; do
    [[ $(readlink "$pid/root" 2>/dev/null) == "$root" ]] && kill -9 "${pid#/proc/}" 2>/dev/null
  done
  sleep 0.2
  for m in $(mounts_under); do umount -l "$m" 2>/dev/null || true; done
  left=$(mounts_under)
  if [[ -n $left ]]; then
    echo "$PROG: still mounted under $root, not removing it: $left" >&2
  elif ((keep)); then
    say "root kept at $root"
  else
    rm -rf "$root"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -xf "$tarball" -C "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# A chroot shares this machine's host name; an installed Debian lists its own in /etc/hosts
# (sudo warns "unable to resolve host" otherwise).
hostname > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' "$(hostname)" \
  > "$root/etc/hosts"

# This network's own certificate authorities: every machine of such a site trusts them (its
# https goes through an intercepting proxy); a brand-new Debian does not.
extra_env=()
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the root"
  # What such a site sets for Node.js, which reads its own CA list, not the system's.
  extra_env=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
fi

home=/root
if [[ -n $user ]]; then
  chroot "$root" useradd --create-home --shell /bin/bash "$user"
  echo "$user ALL=(ALL) NOPASSWD:ALL" > "$root/etc/sudoers.d/$user"
  chmod 0440 "$root/etc/sudoers.d/$user"
  home=/home/$user
fi
src=$home/mnist_dist
git clone -q "$repo" "$root$src"
[[ -z $user ]] || chroot "$root" chown -R "$user:$user" "$src"
say "clean clone of $(git -C "$repo" rev-parse --short HEAD) at $src$([[ -n $user ]] && echo " (user $user, sudo)")"

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"; mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"
mount --bind "$CACHE/apt-archives" "$root/var/cache/apt/archives"
if ((cuda)) && [[ -d /usr/local/cuda ]]; then
  mkdir -p "$root/usr/local/cuda"
  mount --bind "$(readlink -f /usr/local/cuda)" "$root/usr/local/cuda"
  mount -o remount,bind,ro "$root/usr/local/cuda"
  say "/usr/local/cuda mounted read-only"
fi

# ---- the command ---------------------------------------------------------------------------------
runas=()
[[ -z $user ]] || runas=(runuser -u "$user" --)
tmo=()
[[ -z $timeout_s ]] || tmo=(timeout --kill-after=30 "$timeout_s")
say "running: $* (log: $log)"
t0=$SECONDS
rc=0
"${tmo[@]}" chroot "$root" "${runas[@]}" /usr/bin/env -i HOME="$home" USER="${user:-root}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8 \
  "${extra_env[@]}" "${envs[@]}" bash -c 'cd "$0" && exec "$@"' "$src" "$@" </dev/null 2>&1 |
  tee "$log" || rc=$?   # pipefail: COMMAND's status when it failed
elapsed=$((SECONDS - t0))
if ((rc != 0)); then
  echo "$PROG: FAILED: '$*' exited $rc after ${elapsed} s on a fresh Debian 12; last lines of $log:" >&2
  tail -n 40 "$log" | sed 's/^/  | /' >&2
else
  say "passed: '$*' exited 0 after ${elapsed} s on a fresh Debian 12"
fi
exit "$rc"
