# device_lib.sh — the deadline, the steps and the summary of tests/gpu/run_on_device.sh. Sourced
# (not run) after these are set: T0 (SECONDS at the start), DEADLINE_S, STEP_CAP_S, CAP_SCALE,
# RESERVE_S, MIN_STEP_S, SUMMARY (file), LOGS (folder of the step logs).
#
#   step NAME CAP CMD...   runs CMD (a program or an exported function) in the background under
#                          `timeout` for min(CAP × CAP_SCALE, STEP_CAP_S, time left before the deadline minus
#                          RESERVE_S) seconds, output in $LOGS/NAME.log; records ok / FAILED /
#                          TIMEOUT, or "skipped: no time left" when under MIN_STEP_S remain.
#                          Returns 0 only when CMD succeeded. Never exits the script.
#   skip NAME WHY          records a step as skipped (e.g. "no GPU").
#   need NAME DEP...       true when every DEP is ok; else records NAME as skipped naming them.
#   note TEXT              a line of results in the summary (accuracy, versions, ...).
# shellcheck shell=bash

declare -A STATUS=()   # step name → ok | FAILED | TIMEOUT | skipped
ORDER=()               # step names in the order they ran
CHILD=""               # pid of the running step's `timeout`, for the signal handler
CURRENT=""

say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" | tee -a "$SUMMARY"; }
note() { say "  $*"; }
left_s() { echo $((T0 + DEADLINE_S - SECONDS)); }

_record() {  # _record NAME STATUS TEXT
  STATUS[$1]=$2
  ORDER+=("$1")
  say "$(printf '%-8s %-24s %s' "$2" "$1" "$3")"
}

skip() { _record "$1" skipped "skipped: $2"; }

need() {
  local name=$1 dep missing=()
  shift
  for dep in "$@"; do
    [[ ${STATUS[$dep]:-} == ok ]] || missing+=("$dep (${STATUS[$dep]:-not run})")
  done
  ((${#missing[@]} == 0)) && return 0
  skip "$name" "needs ${missing[*]}"
  return 1
}

step() {
  local name=$1 cap=$2 limit left rc=0 t=$SECONDS
  shift 2
  left=$(($(left_s) - RESERVE_S))
  limit=$((cap * CAP_SCALE))
  ((limit <= STEP_CAP_S)) || limit=$STEP_CAP_S
  ((limit <= left)) || limit=$left
  if ((limit < MIN_STEP_S)); then
    skip "$name" "no time left (${left}s before the deadline's reserve)"
    return 1
  fi
  # A function runs in a child bash (exported with export -f), so that timeout can end it.
  if declare -F "$1" >/dev/null; then set -- bash -euo pipefail -c '"$@"' "$1" "$@"; fi
  CURRENT=$name
  # In the background + wait: a TERM to this script is handled at once, not after the step.
  timeout -k 5 "$limit" "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  CHILD=$!
  wait "$CHILD" || rc=$?
  # shellcheck disable=SC2034  # CURRENT is read by run_on_device.sh's signal handler
  CHILD="" CURRENT=""
  if ((rc == 0)); then
    _record "$name" ok "($((SECONDS - t))s)"
  elif ((rc == 124 || rc == 137)); then
    _record "$name" TIMEOUT "killed after $((SECONDS - t))s (limit ${limit}s); see logs/$name.log"
  else
    _record "$name" FAILED "exit $rc after $((SECONDS - t))s; $(tail -n 1 "$LOGS/$name.log" | cut -c1-160)"
  fi
  return "$rc"
}

# The counts and the verdict line; returns 0 when nothing failed or timed out.
verdict() {
  local n s ok=0 bad=0 skipped=0 badnames=()
  for n in "${ORDER[@]}"; do
    s=${STATUS[$n]}
    case $s in
      ok) ok=$((ok + 1)) ;;
      skipped) skipped=$((skipped + 1)) ;;
      *) bad=$((bad + 1)); badnames+=("$n") ;;
    esac
  done
  if ((bad == 0)); then
    say "RESULT: PASS — $ok ok, $skipped skipped, $((SECONDS - T0))s of the ${DEADLINE_S}s deadline"
    return 0
  fi
  say "RESULT: FAIL — $bad failed (${badnames[*]}), $ok ok, $skipped skipped, $((SECONDS - T0))s of ${DEADLINE_S}s"
  return 1
}
