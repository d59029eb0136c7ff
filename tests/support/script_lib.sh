# Shared helpers for the shell tests (sourced, not run).
set -euo pipefail
: "${VARDP_BIN:?VARDP_BIN must point to the vardp binary}"
PY=/usr/bin/python3
TMP=$(mktemp -d "${VARDP_TEST_TMP:-/tmp}/$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# mpirun for tests: root is allowed (CI runs as root), oversubscription on 2 cores.
mpirun_n() { local n=$1; shift; mpirun -np "$n" --oversubscribe "$@"; }
