#!/usr/bin/env bash
# run_local.sh: data-parallel mnist_dist on this machine, N ranks under mpirun, with defaults:
#   - ranks <= cores: each rank bound to its own cores/N cores (--map-by slot:PE=T --bind-to core)
#     and given --threads T; ranks > cores: --oversubscribe, no binding, --threads 1;
#   - --device auto: local rank l trains on GPU l when a GPU is usable, else on the CPU (mnist_dist
#     says so); more ranks than GPUs share them (a note says so);
#   - as root: Open MPI refuses root unless allowed, so OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)=1 are set
#     and a note printed (a rank runs your code as root; prefer a normal user);
#   - OMPI_MCA_btl_vader_single_copy_mechanism=none (faster shared-memory all-reduce on our VMs).
# Flags you pass (--threads, --device, …) win over these defaults; the command is printed first.
# Usage: launch/run_local.sh -n N [--dry-run] [mnist_dist args...]
#   e.g. launch/run_local.sh -n 2 --data data/mnist --epochs 2
# Environment: MNIST_DIST (default build/mnist_dist), MPIRUN (default mpirun), MPIRUN_ARGS (extra
#   mpirun options, word-split), RUN_LOCAL_BIND=auto|core|none (default auto, as above).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MNIST_DIST="${MNIST_DIST:-$root/build/mnist_dist}"
MPIRUN="${MPIRUN:-mpirun}"
BIND="${RUN_LOCAL_BIND:-auto}"
PROG=run_local.sh

usage() { echo "Usage: launch/$PROG -n N [--dry-run] [mnist_dist args...]   (--help: details)"; }
say() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $1" >&2; exit "${2:-2}"; }

n=""; dry=0; args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -n|-np|--np) [[ $# -ge 2 ]] || die "$1 needs a rank count"; n="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ -n "$n" ]] || { usage >&2; die "missing -n N (number of ranks)"; }
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive rank count, got '$n'"
[[ -x "$MNIST_DIST" ]] || die "$MNIST_DIST is not an executable (build first: launch/setup.sh, or set MNIST_DIST)"
command -v "$MPIRUN" >/dev/null 2>&1 || die "$MPIRUN not found (apt-get install openmpi-bin, or set MPIRUN)"

has() { local f="$1" a; for a in "${args[@]}"; do [[ "$a" == "$f" || "$a" == "$f="* ]] && return 0; done; return 1; }

# ---- device: mnist_dist's --device auto takes GPU l for local rank l when a GPU is usable, else
# the CPU (and says so). Here only a note when ranks will share GPUs.
has --device || args+=(--device auto)
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"; fi
if ((gpus > 0 && n > gpus)); then say "note: $n ranks on $gpus GPU(s): ranks share GPUs"; fi

# ---- cores, binding, threads -------------------------------------------------------------------
cores="$(nproc)"
map=()
smt="$(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core: *//p')"
unit=core
if [[ "${smt:-1}" -gt 1 ]]; then map+=(--use-hwthread-cpus); unit=hwthread; fi  # count like nproc
if [[ "$BIND" == auto ]]; then if ((n <= cores)); then BIND=core; else BIND=none; fi; fi
case "$BIND" in
  core)
    ((n <= cores)) || die "RUN_LOCAL_BIND=core needs ranks <= cores ($n > $cores)"
    per=$((cores / n))
    map+=(--map-by "slot:PE=$per" --bind-to "$unit") ;;
  none)
    per=$((cores / n)); ((per >= 1)) || per=1
    map+=(--bind-to none)
    ((n <= cores)) || { map+=(--oversubscribe); say "note: $n ranks on $cores cores: oversubscribed, unbound, 1 thread each"; } ;;
  *) die "RUN_LOCAL_BIND must be auto, core or none, got '$BIND'" ;;
esac
has --threads || args+=(--threads "$per")

# ---- Open MPI environment ----------------------------------------------------------------------
if [[ "$(id -u)" -eq 0 ]]; then
  if [[ -z "${OMPI_ALLOW_RUN_AS_ROOT:-}" ]]; then
    say "note: running as root; Open MPI refuses that unless OMPI_ALLOW_RUN_AS_ROOT=1 and" \
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are set (done here). Prefer a normal user."
  fi
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"

extra=()
# shellcheck disable=SC2206  # MPIRUN_ARGS is a word-split list of options by design
[[ -n "${MPIRUN_ARGS:-}" ]] && extra=($MPIRUN_ARGS)
cmd=("$MPIRUN" -n "$n" "${map[@]}" "${extra[@]}" "$MNIST_DIST" "${args[@]}")
say "${cmd[*]}"
((dry)) && exit 0
exec "${cmd[@]}"
