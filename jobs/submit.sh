#!/usr/bin/env bash
# Submits training to Slurm and sample + eval as a job that waits for it.
#   jobs/submit.sh run CONFIG [--set k=v ...]          one run
#   jobs/submit.sh sweep CONFIG SWEEP [--set k=v ...]  a job array over the sweep's points
#   jobs/submit.sh list FILE [--set k=v ...]           a job array over the configs in FILE
#   jobs/submit.sh eps | k | table1 [--set k=v ...]    the paper's sweeps (configs/sweeps/)
# Paths are relative to the repository root. Extra sbatch options: SBATCH_ARGS="--partition=gpu
# --account=abc" (or Slurm's own SBATCH_PARTITION, SBATCH_ACCOUNT ...); ARRAY_LIMIT=4 runs at
# most 4 elements at once.
set -euo pipefail
cd "$(dirname "$0")/.."
export VARDP_ROOT=$PWD
# shellcheck source=jobs/lib/common.sh
source jobs/lib/common.sh
[ $# -ge 1 ] || die "usage: jobs/submit.sh run|sweep|list|eps|k|table1 ... (see the header)"
mode=$1
shift
case $mode in
  run | sweep) ;;
  list) [ $# -ge 1 ] || die "list needs FILE"; set -- --list "$@" ;;
  eps) set -- configs/experiments/sweeps/eps_dp-lora_k32_d16.toml configs/sweeps/eps.toml "$@" ;;
  k) set -- configs/experiments/sweeps/k_dp-lora_eps10_d16.toml configs/sweeps/k.toml "$@" ;;
  table1) set -- --list configs/sweeps/table1.list "$@" ;;
  *) die "unknown mode '$mode'" ;;
esac

# Fail here, not in the queue: resolve the first run (config errors name file and line).
INDEX=0 resolve_point "$@"
n=$(count_points "$@")
read -r -a extra <<< "${SBATCH_ARGS:-}"
mkdir -p logs
array=()
dependency=afterok
if [ "$n" -gt 0 ]; then
  # aftercorr: eval element i starts when training element i has finished (after requeues).
  array=(--array="0-$((n - 1))${ARRAY_LIMIT:+%$ARRAY_LIMIT}" --output=logs/%x-%A_%a.out)
  dependency=aftercorr
fi
train=$(sbatch --parsable "${extra[@]}" "${array[@]}" jobs/slurm/train.sbatch "$@")
train=${train%%;*}  # --parsable prints "id" or "id;cluster"
evaluation=$(sbatch --parsable "${extra[@]}" "${array[@]}" --dependency="$dependency:$train" \
  --kill-on-invalid-dep=yes jobs/slurm/eval.sbatch "$@")
evaluation=${evaluation%%;*}
log "training job $train${array:+ (${array[0]#--})}, sample + eval job $evaluation after it; logs in logs/"
log "first run directory: $RUN_DIR"
