#!/usr/bin/env bash
# Every run of a sweep or list, one after the other, through jobs/local/run.sh (same arguments
# and variables). INDICES="0 3" runs only those points. A finished run (DONE) is not retrained.
#   jobs/local/sweep.sh configs/experiments/sweeps/eps_dp-lora_k32_d16.toml configs/sweeps/eps.toml
#   jobs/local/sweep.sh --list configs/sweeps/table1.list
set -euo pipefail
VARDP_ROOT=${VARDP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=jobs/lib/common.sh
source "$VARDP_ROOT/jobs/lib/common.sh"
n=$(count_points "$@")
[ "$n" -gt 0 ] || die "name a sweep (CONFIG SWEEP) or a list (--list FILE); for one config use run.sh"
for i in ${INDICES:-$(seq 0 $((n - 1)))}; do
  log "point $i of $n"
  INDEX=$i bash "$VARDP_ROOT/jobs/local/run.sh" "$@"
done
