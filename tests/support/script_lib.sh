# Shared helpers for the shell tests (sourced, not run).
set -euo pipefail
: "${VARDP_BIN:?VARDP_BIN must point to the vardp binary}"
PY=/usr/bin/python3
TMP=$(mktemp -d "${VARDP_TEST_TMP:-/tmp}/$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# mpirun for tests: root is allowed (CI runs as root), oversubscription on 2 cores.
mpirun_n() { local n=$1; shift; mpirun -np "$n" --oversubscribe "$@"; }
# Shared paths: the team's fixtures (../shared next to the checkout, or VARDP_SHARED_DIR) and
# the tests directory (tests/python, tests/data).
SHARED="${VARDP_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/../shared}"
FIX="$SHARED/fixtures/var_official_tiny"
TESTS="$(cd "$(dirname "$0")/.." && pwd)"
