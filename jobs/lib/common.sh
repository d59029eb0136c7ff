# shellcheck shell=bash
# Helpers shared by the Slurm (jobs/slurm/) and workstation (jobs/local/) scripts; sourced.
#
# Every script names one training run the same way, so that the training job and the later
# sample + eval job agree on its directory:
#   CONFIG [--set k=v ...]                one config
#   CONFIG SWEEP [--set k=v ...]          point INDEX of a sweep file (vardp sweep list)
#   --list FILE [--set k=v ...]           the config on line INDEX of FILE (comments skipped)
# INDEX is $INDEX, else $SLURM_ARRAY_TASK_ID. The run directory is the resolved output.dir
# (vardp appends the sweep point's label), a pure function of the point: a requeued or rerun
# job finds its checkpoints there.

VARDP_ROOT=${VARDP_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
if [ -z "${VARDP_BIN:-}" ]; then
  if [ -x "$VARDP_ROOT/build/vardp" ]; then VARDP_BIN=$VARDP_ROOT/build/vardp; else VARDP_BIN=vardp; fi
fi
# Site set-up (modules, CUDA/NCCL paths, e.g. ../shared/gpu/env.sh) before anything runs.
if [ -n "${VARDP_ENV:-}" ]; then
  # shellcheck source=/dev/null
  source "$VARDP_ENV"
fi
EXIT_REQUEUE=75  # vardp: "checkpoint written, run me again"

log() { printf '[%s %s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${0##*/}" "$*"; }
die() { log "error: $*" >&2; exit 1; }

# Sets POINT_ARGS (vardp options naming the run), SET_ARGS (the --set overrides), POINT (a
# description for the log) and RUN_DIR.
resolve_point() {
  local index=${INDEX:-${SLURM_ARRAY_TASK_ID:-}} config line
  POINT_ARGS=() SET_ARGS=()
  [ $# -gt 0 ] || die "usage: CONFIG [SWEEP] [--set k=v ...] | --list FILE [--set k=v ...]"
  if [ "$1" = --list ]; then
    [ -n "$index" ] || die "--list needs INDEX or SLURM_ARRAY_TASK_ID"
    config=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$2" | sed -n "$((index + 1))p")
    [ -n "$config" ] || die "$2 has no line for index $index"
    POINT_ARGS=(--config "$config")
    POINT="$2[$index] = $config"
    shift 2
  else
    POINT_ARGS=(--config "$1")
    POINT=$1
    shift
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
      [ -n "$index" ] || die "a sweep needs INDEX or SLURM_ARRAY_TASK_ID"
      # The array index is the index of `vardp sweep list`; refuse indices past the last point.
      line=$("$VARDP_BIN" sweep list "$1" | awk -F '\t' -v i="$index" '$1 == i')
      [ -n "$line" ] || die "sweep $1 has no point $index (see: vardp sweep list $1)"
      POINT_ARGS+=(--sweep "$1" --sweep-index "$index")
      POINT="$POINT, sweep point ${line//$'\t'/ }"
      shift
    fi
  fi
  while [ $# -gt 0 ]; do
    case $1 in
      --set) [ $# -ge 2 ] || die "--set needs table.key=value"; SET_ARGS+=(--set "$2"); shift 2 ;;
      --set=*) SET_ARGS+=("$1"); shift ;;
      *) die "unexpected argument '$1' (only --set k=v may follow the run's name)" ;;
    esac
  done
  RUN_DIR=$("$VARDP_BIN" config show "${POINT_ARGS[@]}" "${SET_ARGS[@]}" |
            sed -n '/^\[output\]/,/^\[/s/^dir = "\(.*\)"$/\1/p')
  [ -n "$RUN_DIR" ] || die "could not resolve output.dir of $POINT"
}

# Runs "$@" in the background so that this shell can take a signal (Slurm's --signal=B:USR1@T
# reaches the batch shell only) and pass it to the job step; returns the command's status and
# sets SIGNALLED to the signal taken, if any.
run_forwarding_signals() {
  local rc again
  # Traps first: an early signal must not kill this shell before it can pass the signal on.
  CHILD_PID=""
  # shellcheck disable=SC2034  # read by the callers (jobs/local/run.sh)
  SIGNALLED=""
  trap 'SIGNALLED=USR1; log "SIGUSR1: asking the run to checkpoint and stop"; kill -USR1 "$CHILD_PID" 2>/dev/null || true' USR1
  trap 'SIGNALLED=TERM; log "SIGTERM: passing it on"; kill -TERM "$CHILD_PID" 2>/dev/null || true' TERM
  "$@" &
  CHILD_PID=$!
  while :; do
    rc=0
    wait "$CHILD_PID" || rc=$?
    # Above 128 either the child died of a signal or a trap interrupted `wait`.
    if [ "$rc" -gt 128 ]; then
      if kill -0 "$CHILD_PID" 2>/dev/null; then continue; fi
      again=0
      wait "$CHILD_PID" 2>/dev/null || again=$?
      [ "$again" -eq 127 ] || rc=$again  # 127: the status was already collected
    fi
    break
  done
  trap - USR1 TERM
  return "$rc"
}

# The body of jobs/slurm/train.sbatch: train with --resume auto; on exit 75 (checkpoint written
# because of --signal or train.max_hours) requeue this job (an array element requeues alone).
slurm_train() {
  local rc=0
  resolve_point "$@"
  log "job ${SLURM_JOB_ID:-?} (array ${SLURM_ARRAY_JOB_ID:-none} task ${SLURM_ARRAY_TASK_ID:-none})," \
      "restart ${SLURM_RESTART_COUNT:-0}: $POINT -> $RUN_DIR"
  run_forwarding_signals srun --kill-on-bad-exit=1 \
    "$VARDP_BIN" train "${POINT_ARGS[@]}" "${SET_ARGS[@]}" --resume auto || rc=$?
  case $rc in
    0) log "training finished: $RUN_DIR" ;;
    "$EXIT_REQUEUE")
      log "checkpoint written; requeueing job $SLURM_JOB_ID"
      scontrol requeue "$SLURM_JOB_ID" ;;
    *) log "training failed with exit code $rc"; exit "$rc" ;;
  esac
}

# Number of runs named by the arguments: points of the sweep, lines of the list, or 0 for one
# config (not an array).
count_points() {
  if [ "$1" = --list ]; then
    grep -c -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$2" || true
  elif [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then
    "$VARDP_BIN" sweep list "$2" | wc -l
  else
    echo 0
  fi
}
