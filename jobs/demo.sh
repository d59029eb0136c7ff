#!/usr/bin/env bash
# The README's main command: the embedded demo end to end (docs/demo.md). Installs what is missing,
# builds vardp, prepares the public/private parts of Fashion-MNIST, then, on NP MPI ranks (default
# 2), adapts the shipped small VAR (models/, pre-trained on the public classes 0-4) to the private
# classes 5-9 with DP-LoRA (epsilon 10, delta 1/N, k = 4) and with non-private LoRA, samples every
# model, evaluates the samples against the private test split with the shipped Fashion-MNIST
# classifier (FID on its features, class accuracy) -- also for the un-adapted base model -- and
# prints a table. Outputs: runs/demo/ (DEMO_DIR).
#   jobs/demo.sh                 everything
#   SKIP_INSTALL=1 jobs/demo.sh  packages already there (no root needed)
# Environment: BUILD_DIR (build), DEMO_DIR (runs/demo), NP (2), THREADS (LibTorch threads per
# rank; default cores / NP), VARDP_BIN (use this binary, do not build), DEMO_SET ("k=v k=v":
# extra config overrides for both runs) and DEMO_PER_CLASS (samples per class; default the
# configs' 100) -- the last three let a test run the whole flow in seconds.
# Data go to data/fashion_mnist (the demo configs read that path).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DEMO_DIR=${DEMO_DIR:-runs/demo}
DATA_DIR=data/fashion_mnist
NP=${NP:-2}
CORES=$(nproc)
THREADS=${THREADS:-$(( CORES / NP > 0 ? CORES / NP : 1 ))}
T0=$(date +%s)
step() { echo "[demo $(date -u +%H:%M:%S), $(( $(date +%s) - T0 )) s] $*"; }
die() { echo "[demo] error: $*" >&2; exit 1; }

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  step "installing Debian packages (jobs/install-deps.sh)"
  bash jobs/install-deps.sh
fi
# Open MPI refuses root unless told; CI and fresh containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if [ -n "${VARDP_BIN:-}" ]; then
  VARDP=$VARDP_BIN
else
  step "building vardp in $BUILD_DIR (first build: about 6 minutes on 2 cores)"
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$BUILD_DIR.configure.log" 2>&1 ||
      { cat "$BUILD_DIR.configure.log"; die "cmake configure failed"; }
  fi
  cmake --build "$BUILD_DIR" -j "$CORES" --target vardp
  VARDP=$PWD/$BUILD_DIR/vardp
fi
SET_ARGS=()
for kv in ${DEMO_SET:-}; do SET_ARGS+=(--set "$kv"); done
PER_CLASS=()
[ -z "${DEMO_PER_CLASS:-}" ] || PER_CLASS=(--per-class "$DEMO_PER_CLASS")
for f in models/fmnist_vqvae.h5 models/fmnist_var_d2.h5 models/fmnist_classifier.h5; do
  [ -f "$f" ] || die "$f is missing (shipped with the repository; see models/README.md)"
done

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
if [ ! -f "$DATA_DIR/private/test.h5" ] || [ ! -f "$DATA_DIR/public/test.h5" ]; then
  step "preparing Fashion-MNIST: public classes 0-4, private classes 5-9 (200 training images each)"
  VARDP=$VARDP bash datasets/fashion_mnist_demo.sh "$DATA_DIR" > "$DEMO_DIR/prepare.log" 2>&1 ||
    { cat "$DEMO_DIR/prepare.log"; die "vardp prepare failed"; }
fi
MPI=(mpirun -np "$NP" --oversubscribe -x OMP_NUM_THREADS="$THREADS")
log_of() { echo "$DEMO_DIR/$1.log"; }
run_logged() {  # NAME CMD...: output to DEMO_DIR/NAME.log; its progress lines echoed as they come
  local name=$1 log pid
  log=$(log_of "$name")
  shift
  : > "$log"
  "$@" >> "$log" 2>&1 &
  pid=$!
  # Training steps, the privacy spent and results, without the timestamps.
  tail -n +1 -f --pid="$pid" "$log" |
    grep --line-buffered -E ' step [0-9]+/[0-9]+ |privacy spent|^(fid|class_accuracy) ' |
    sed -u -E 's/^([0-9TZ:-]+ )?/    /' &
  if ! wait "$pid"; then
    wait
    tail -n 30 "$log"
    die "$name failed (log: $log)"
  fi
  wait
}

for method in dp_lora lora; do
  step "fine-tuning with $method on $NP ranks (configs/demo/$method.toml; log $(log_of "$method-train"))"
  run_logged "$method-train" "${MPI[@]}" "$VARDP" train --config "configs/demo/$method.toml" \
    --set "output.dir=$DEMO_DIR/$method" "${SET_ARGS[@]}"
  step "sampling $method (${DEMO_PER_CLASS:-100} per class, rank-sharded)"
  run_logged "$method-sample" "${MPI[@]}" "$VARDP" sample --run "$DEMO_DIR/$method" "${PER_CLASS[@]}"
  step "evaluating $method against the private test split"
  run_logged "$method-eval" "$VARDP" eval --run "$DEMO_DIR/$method"
done

step "the un-adapted base model: its own classes, evaluated against the private test split"
mkdir -p "$DEMO_DIR/base"
run_logged base-sample "${MPI[@]}" "$VARDP" sample --vae models/fmnist_vqvae.h5 --var models/fmnist_var_d2.h5 \
  --classes 0,1,2,3,4 --per-class "${DEMO_PER_CLASS:-100}" --cfg 1.5 --top-k 0 --top-p 0 --seed 0 --out "$DEMO_DIR/base/samples.h5"
run_logged base-eval "$VARDP" eval --real "$DATA_DIR/private/test.h5" --fake "$DEMO_DIR/base/samples.h5" \
  --classifier models/fmnist_classifier.h5 --out "$DEMO_DIR/base/eval.h5"

step "done"
/usr/bin/python3 analysis/demo_table.py "$DEMO_DIR"
echo
echo "Outputs under $DEMO_DIR/: <run>/{metrics,flops,samples,eval}.h5, <run>/samples.png (contact sheets),"
echo "table.md / table.csv, logs *.log. Formats: docs/formats/run.md. More: docs/demo.md."
