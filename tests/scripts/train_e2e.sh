#!/usr/bin/env bash
# End-to-end `vardp train` under `mpirun -np 2` (issue 5, acceptance 1): full / lora / lntune,
# plain and DP, on the tiny fixture models and a synthetic dataset. Each run must finish, write
# its checkpoint, metrics.h5, config.toml and DONE, and lower the training loss; DP runs must
# report epsilon <= their target.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/train.h5" --n 24 --classes 4

run() {  # name, extra --set arguments...
  local name=$1; shift
  local sets=(--set "model.vae=$FIX/vae_fixture.pth" --set "model.var=$FIX/var_fixture.pth"
              --set "data.train=$TMP/train.h5" --set "output.dir=$TMP/$name")
  for s in "$@"; do sets+=(--set "$s"); done
  mpirun_n 2 "$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" "${sets[@]}" > "$TMP/$name.log" 2>&1 \
    || { cat "$TMP/$name.log"; fail "$name: vardp train failed"; }
  for f in DONE latest metrics.h5 config.toml; do
    [ -e "$TMP/$name/$f" ] || fail "$name: $f missing"
  done
  "$PY" - "$TMP/$name" "$name" <<'PYEOF' || { cat "$TMP/$name.log"; fail "$name: outputs"; }
import sys, h5py, numpy as np
run, name = sys.argv[1], sys.argv[2]
with h5py.File(run + "/metrics.h5", "r") as f:
    assert f.attrs["format"] == "vardp.metrics", f.attrs["format"]
    loss = f["metrics/loss/value"][...]
    steps = f["metrics/loss/step"][...]
    assert len(loss) == f.attrs["total_steps"], (len(loss), f.attrs["total_steps"])
    first, last = loss[:3].mean(), loss[-3:].mean()
    print(f"{name}: loss {first:.4f} -> {last:.4f}, trainable {f.attrs['trainable_params']}")
    assert np.all(np.isfinite(loss)), loss
    assert last < first, f"loss did not go down: {loss}"
    # Invariant 5: losses and norms of DP runs are marked as non-private diagnostics.
    assert f.attrs["diagnostics_not_private"] == f.attrs["dp_enabled"], dict(f.attrs)
    if f.attrs["dp_enabled"]:
        assert "privacy" in f and f["privacy"].attrs["total_steps"] == len(loss)  # invariant 4
        eps = f["metrics/epsilon/value"][-1]
        target = f.attrs["target_epsilon"]
        print(f"{name}: epsilon {eps:.3f} (target {target})")
        assert eps <= target + 1e-9, (eps, target)
latest = open(run + "/latest").read().strip()
with h5py.File(run + "/" + latest, "r") as f:
    assert f.attrs["format"] == "vardp.checkpoint"
    assert f.attrs["step"] == f.attrs["planned_steps"]
    assert len(f["trainable"].attrs["keys"]) > 0
    if "privacy" in f:
        assert f["privacy"].attrs["total_steps"] == f.attrs["planned_steps"]
PYEOF
}

DP=(dp.enabled=true dp.target_epsilon=30.0 dp.sample_rate=0.34 train.lr=3e-3)
run full_plain adapt.method=full train.lr=1e-3
run lora_plain adapt.method=lora
run lntune_plain adapt.method=lntune
run full_dp adapt.method=full "${DP[@]}" train.lr=1e-3 dp.max_grad_norm=2.0
run lora_dp adapt.method=lora "${DP[@]}"
run lntune_dp adapt.method=lntune "${DP[@]}"

# A finished run is not redone.
mpirun_n 2 "$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" \
  --set "model.var=$FIX/var_fixture.pth" --set "data.train=$TMP/train.h5" --set "output.dir=$TMP/lora_plain" \
  > "$TMP/again.log" 2>&1 || fail "re-run of a finished run failed"
grep -q "already finished" "$TMP/again.log" || fail "a finished run was not recognised"
# vardp merge folds LoRA into a full state dict that vardp sample loads strictly.
"$VARDP_BIN" merge --run "$TMP/lora_plain" --out "$TMP/merged.h5" > "$TMP/merge.log" 2>&1 \
  || { cat "$TMP/merge.log"; fail "merge"; }
grep -q "LoRA layers folded" "$TMP/merge.log" || fail "merge: no LoRA folded"
"$VARDP_BIN" sample --vae "$FIX/vae_fixture.pth" --var "$TMP/merged.h5" --classes 0,3 --top-k 1 --seed 1 \
  --device cpu --out "$TMP/samples.h5" > "$TMP/sample.log" 2>&1 || { cat "$TMP/sample.log"; fail "sample from merged"; }
"$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert f['images'].shape==(2,80,80,3), f['images'].shape" \
  "$TMP/samples.h5" || fail "merged samples"
echo "train_e2e OK"
