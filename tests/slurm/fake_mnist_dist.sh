#!/usr/bin/env bash
# fake_mnist_dist.sh: stands in for mnist_dist to test the preemption plumbing of
# cluster/slurm/preemptible.sbatch without real training. It follows mnist_dist's contract for
# --checkpoint-dir / --resume auto / SIGUSR1+SIGTERM: on a signal, rank 0 writes a checkpoint and
# every rank exits 3; with --resume auto and a checkpoint present it "resumes" and finishes (exit 0).
# Without a signal it gives up after FAKE_MAX_SECONDS (default 60) and exits 1.
# Usage: fake_mnist_dist.sh [mnist_dist flags...]   (only --checkpoint-dir and --resume are read)
set -euo pipefail
ckpt="" resume=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --checkpoint-dir) ckpt="$2"; shift ;;
    --resume) resume="$2"; shift ;;
  esac
  shift
done
rank="${PMIX_RANK:-${OMPI_COMM_WORLD_RANK:-0}}"
[[ -n "$ckpt" ]] || { echo "fake_mnist_dist: error: --checkpoint-dir missing" >&2; exit 2; }
if [[ "$resume" == auto && -f "$ckpt/ckpt-step-7.h5" ]]; then
  if [[ "$rank" == 0 ]]; then
    echo "fake_mnist_dist: resumed from $ckpt/ckpt-step-7.h5"
    echo "Test loss: 0.5"
    echo "Test accuracy: 0.9000"
  fi
  exit 0
fi
# shellcheck disable=SC2317  # invoked by the traps below
on_signal() {
  trap '' USR1 TERM   # like mnist_dist's flag: a repeated signal must not kill us half-way
  if [[ "$rank" == 0 ]]; then
    : >"$ckpt/ckpt-step-7.h5"
    echo "fake_mnist_dist: SIG$1 at step 7: checkpoint written"
  fi
  exit 3
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM
echo "fake_mnist_dist: rank $rank of ${SLURM_NTASKS:-1} waiting for a signal"
for ((i = 0; i < ${FAKE_MAX_SECONDS:-60} * 10; i++)); do sleep 0.1; done
echo "fake_mnist_dist: no signal came" >&2
exit 1
