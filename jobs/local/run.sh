#!/usr/bin/env bash
# The Slurm flow on a workstation: train under mpirun, resume after every exit 75 (what a requeue
# does on a cluster, e.g. with train.max_hours set), then sample + eval the finished run.
#   jobs/local/run.sh CONFIG [--set k=v ...]
#   INDEX=3 jobs/local/run.sh CONFIG SWEEP [--set k=v ...]
#   INDEX=3 jobs/local/run.sh --list configs/sweeps/table1.list
# NP ranks (default 2), MPIRUN (default mpirun), SKIP_EVAL=1 trains only, MAX_RESTARTS (20).
# SIGUSR1 or SIGTERM (Ctrl-C sends SIGINT: use kill) stops after a checkpoint; rerun to resume.
set -euo pipefail
VARDP_ROOT=${VARDP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=jobs/lib/common.sh
source "$VARDP_ROOT/jobs/lib/common.sh"
NP=${NP:-2}
read -r -a mpirun <<< "${MPIRUN:-mpirun}"
resolve_point "$@"
log "$POINT -> $RUN_DIR on $NP rank(s)"
restarts=0
while :; do
  rc=0
  run_forwarding_signals "${mpirun[@]}" -np "$NP" \
    "$VARDP_BIN" train "${POINT_ARGS[@]}" "${SET_ARGS[@]}" --resume auto || rc=$?
  [ "$rc" -eq "$EXIT_REQUEUE" ] || break
  if [ -n "$SIGNALLED" ]; then
    log "stopped by SIG$SIGNALLED after a checkpoint; run the same command to resume"
    exit "$rc"
  fi
  restarts=$((restarts + 1))
  [ "$restarts" -le "${MAX_RESTARTS:-20}" ] || die "not finished after $restarts restarts"
  log "checkpoint written (exit 75): resuming, restart $restarts"
done
[ "$rc" -eq 0 ] || die "training failed with exit code $rc"
log "training finished: $RUN_DIR"
if [ "${SKIP_EVAL:-0}" != 1 ]; then
  "${mpirun[@]}" -np "$NP" "$VARDP_BIN" sample --run "$RUN_DIR"
  "$VARDP_BIN" eval --run "$RUN_DIR"
  log "evaluated: $RUN_DIR/eval.h5"
fi
