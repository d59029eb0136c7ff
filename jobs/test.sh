#!/usr/bin/env bash
# The README's test command: install what is missing, configure, build, run every test (unit,
# golden, MPI on 2 ranks, script tests). BUILD_DIR defaults to build/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
bash jobs/install-deps.sh
# Open MPI refuses to run as root without these (CI runs as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$BUILD_DIR.configure.log" 2>&1 || {
  cat "$BUILD_DIR.configure.log"; exit 1; }
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "build: $(( $(date +%s) - start )) s"
cd "$BUILD_DIR"
ctest --output-on-failure -j "$JOBS" "$@"
