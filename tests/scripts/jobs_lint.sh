#!/usr/bin/env bash
# Every job script parses (bash -n) and passes shellcheck; the Slurm templates keep the
# directives the requeue flow depends on.
source "$(dirname "$0")/../support/script_lib.sh"
SRC=${VARDP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SRC" || exit 1
mapfile -t scripts < <(find jobs -type f \( -name '*.sh' -o -name '*.sbatch' \) | sort)
[ "${#scripts[@]}" -ge 6 ] || fail "found only ${#scripts[@]} job scripts"
for f in "${scripts[@]}"; do bash -n "$f" || fail "bash -n $f"; done
echo "bash -n: ${#scripts[@]} scripts ok"
if command -v shellcheck > /dev/null; then
  # -x follows `source` into jobs/lib/common.sh (paths in the directives are repository-relative);
  # warnings and errors fail, style and info notes do not.
  shellcheck -x -S warning "${scripts[@]}" || fail "shellcheck"
  echo "shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ok"
else
  echo "SKIP shellcheck: not installed (apt-get install shellcheck; jobs/install-deps.sh installs it)"
fi
for directive in '--signal=B:USR1@' '--requeue' '--open-mode=append' '--gpus-per-task=1'; do
  grep -q -e "^#SBATCH $directive" jobs/slurm/train.sbatch || fail "train.sbatch lacks #SBATCH $directive"
done
echo "train.sbatch directives ok"
