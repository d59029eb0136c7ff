#!/usr/bin/env bash
# The embedded demo's flow (jobs/demo.sh) in seconds: the shipped models (models/) load with the
# demo configs, a DP-LoRA and a LoRA run of 2 steps each on 2 ranks, sampling, evaluation with the
# shipped classifier, the base model's evaluation and the table. The full-length demo is run by
# hand (docs/demo.md records its numbers); this guards the script, configs and shipped files.
source "$(dirname "$0")/../support/script_lib.sh"
SRC=${VARDP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
mkdir -p "$TMP/repo"
cp -r "$SRC/jobs" "$SRC/configs" "$SRC/models" "$SRC/datasets" "$SRC/analysis" "$TMP/repo/"
cd "$TMP/repo" || exit 1
SKIP_INSTALL=1 VARDP_BIN=$VARDP_BIN THREADS=1 DEMO_PER_CLASS=4 \
  DEMO_SET="train.epochs=0 train.steps=2 output.checkpoint_every=0" bash jobs/demo.sh > "$TMP/demo.log" 2>&1 ||
  { cat "$TMP/demo.log"; fail "jobs/demo.sh"; }
cat "$TMP/demo.log"
for m in dp_lora lora; do
  [ -f "runs/demo/$m/DONE" ] && [ -f "runs/demo/$m/eval.h5" ] && [ -f "runs/demo/$m/samples.png" ] ||
    fail "$m: run, samples or eval missing"
done
grep -q "^| base (not adapted)" runs/demo/table.md || fail "no base row in the table"
grep -q "^| DP-LoRA (k=4)" runs/demo/table.md || fail "no DP-LoRA row in the table"
grep -q "^| LoRA " runs/demo/table.md || fail "no LoRA row in the table"
"$PY" - <<'PYEOF'
import h5py, math
with h5py.File("runs/demo/dp_lora/metrics.h5", "r") as f:
    assert int(f.attrs["dp_enabled"]) == 1 and int(f.attrs["augmult"]) == 4, dict(f.attrs)
for run in ("dp_lora", "lora", "base"):
    with h5py.File(f"runs/demo/{run}/eval.h5", "r") as f:
        assert math.isfinite(float(f["fid"][()])), run
        assert 0.0 <= float(f["class_accuracy"][()]) <= 1.0, run
print("demo flow ok")
PYEOF
