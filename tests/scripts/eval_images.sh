#!/usr/bin/env bash
# vardp eval on images (issue 7: feature networks, class accuracy, eval --run): a small CNN
# trained by `vardp train-classifier` on a synthetic 4-class set maps images to features; real vs
# real (two halves of the test split) gives a small FID and a high class accuracy, real vs images
# of another class (labelled with the intended class) a large FID and a low accuracy; reference
# statistics from images reproduce the direct FID. Then `vardp eval --run` on a tiny trained and
# sampled run: DIR/eval.h5 with `step` and /class_accuracy, the test split's features cached and
# reused, --checkpoint (samples-<step>.h5 -> eval-<step>.h5), two ranks, errors on every rank.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
T0=$SECONDS

# ---- data: stored 90 x 90, evaluated (and modelled) at 80 x 80, 4 classes ----
mkdir -p "$TMP/data"
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/data/train.h5" --n 256 --classes 4
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/data/test.h5" --n 160 --classes 4 --seed 5 --split test
"$PY" - "$TMP" <<'PYEOF'
import sys, h5py, numpy as np
tmp = sys.argv[1]
with h5py.File(f"{tmp}/data/test.h5") as f:
    x, y = f["images"][()], f["labels"][()]
def write(name, images, labels):
    with h5py.File(f"{tmp}/{name}.h5", "w") as g:   # a plain h5py image file (no format attribute)
        g["images"], g["labels"] = images, labels
        g.attrs["image_size"] = np.int64(80)          # evaluate the centre 80 x 80 of the 90 x 90 images
write("half_a", x[:80], y[:80])    # labels cycle 0..3: both halves hold every class equally
write("half_b", x[80:], y[80:])
zeros = np.flatnonzero(y == 0)
# Images of class 0, each "generated for" class 1: a wrong class throughout.
write("other", x[np.resize(zeros, 80)], np.full(80, 1, np.int64))
PYEOF

# ---- the classifier ----
"$VARDP_BIN" train-classifier --train "$TMP/data/train.h5" --test "$TMP/data/test.h5" --out "$TMP/cls.h5" \
  --epochs 3 --batch 32 --width 8 --feature-dim 32 --lr 3e-3 --threads 2 --log-every 4 > "$TMP/cls.log" 2>&1 \
  || { cat "$TMP/cls.log"; fail "train-classifier"; }
grep -q "train-classifier: epoch 1/3 step 4/24 loss .* images/s ETA" "$TMP/cls.log" || { cat "$TMP/cls.log"; fail "progress line"; }
acc=$(sed -n 's/^test_accuracy //p' "$TMP/cls.log")
echo "classifier test accuracy $acc ($((SECONDS - T0)) s so far)"
"$PY" - "$TMP/cls.h5" "$acc" <<'PYEOF'
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    assert f.attrs["format"] == "vardp.classifier" and f.attrs["arch"] == "vardp-smallcnn-v1"
    assert f.attrs["image_size"] == 80 and f.attrs["feature_dim"] == 32 and f.attrs["num_classes"] == 4
    assert list(f.attrs["original_class_ids"]) == [0, 1, 2, 3]
    assert abs(f.attrs["test_accuracy"] - float(sys.argv[2])) < 1e-5
    assert f.attrs["test_accuracy"] >= 0.9, f.attrs["test_accuracy"]
    assert list(f["history/epoch"][()]) == [1, 2, 3] and f["history/test_accuracy"][-1] == f.attrs["test_accuracy"]
    assert "tensors/blocks.0.conv.weight" in f and "tensors/feature.weight" in f
PYEOF
set +e
mpirun_n 2 "$VARDP_BIN" train-classifier --train "$TMP/data/train.h5" --out "$TMP/cls2.h5" > "$TMP/cls2.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "runs in one process" "$TMP/cls2.log" || { cat "$TMP/cls2.log"; fail "2 ranks: rc $rc"; }

# ---- images as eval inputs ----
ev() { "$VARDP_BIN" eval --classifier "$TMP/cls.h5" --threads 2 "$@"; }
ev --real "$TMP/half_a.h5" --fake "$TMP/half_b.h5" --out "$TMP/same.h5" > "$TMP/same.txt" || fail "eval same"
ev --real "$TMP/half_a.h5" --fake "$TMP/other.h5" --out "$TMP/other_m.h5" > "$TMP/other.txt" || fail "eval other"
ev --real "$TMP/data/test.h5" --fake "$TMP/data/train.h5" --out "$TMP/ds.h5" > "$TMP/ds.txt" || fail "eval datasets"
ev --real "$TMP/half_a.h5" --stats-out "$TMP/ref_stats.h5" > "$TMP/stats.txt" || fail "stats-out from images"
grep -q "^stats_out .* n=80 d=32$" "$TMP/stats.txt" || { cat "$TMP/stats.txt"; fail "stats_out line"; }
ev --real "$TMP/ref_stats.h5" --fake "$TMP/half_b.h5" --out "$TMP/from_stats.h5" > /dev/null || fail "eval vs stats"
cat "$TMP/same.txt" "$TMP/other.txt"
"$PY" - "$TMP" <<'PYEOF'
import sys, h5py, numpy as np
t = sys.argv[1]
m = {n: h5py.File(f"{t}/{n}.h5", "r") for n in ("same", "other_m", "ds", "from_stats")}
same, other = m["same"], m["other_m"]
fs, fo = same["fid"][()], other["fid"][()]
print(f"real vs real: FID {fs:.3f}, accuracy {same['class_accuracy'][()]:.3f}; "
      f"real vs other class: FID {fo:.3f}, accuracy {other['class_accuracy'][()]:.3f}")
assert same.attrs["real_input"] == "images" and same.attrs["fake_input"] == "images"
assert same.attrs["feature_net"] == "classifier" and len(same.attrs["feature_net_sha256"]) == 64
assert same.attrs["n_real"] == 80 and same.attrs["dim"] == 32
assert fo > 10 * fs and fo > 1.0, (fs, fo)
assert same["class_accuracy"][()] >= 0.9
assert other["class_accuracy"][()] <= 0.1
assert list(other["class_accuracy_counts"][()]) == [0, 80, 0, 0]
assert np.isnan(other["class_accuracy_per_class"][0]) and other["class_accuracy_per_class"][1] <= 0.1
# Images of one real class are realistic (precision stays high) but cover a quarter of the set.
assert same["pr/recall"][0] > 0.8 and other["pr/recall"][0] <= 0.3, (same["pr/recall"][0], other["pr/recall"][0])
# Dataset files: centre-cropped through their image_size attribute; the train split is labelled.
assert m["ds"].attrs["n_real"] == 160 and m["ds"].attrs["n_fake"] == 256 and m["ds"]["class_accuracy"][()] >= 0.9
# Statistics from images give the direct FID.
a, b = same["fid"][()], m["from_stats"]["fid"][()]
assert abs(a - b) <= 1e-9 * a, (a, b)
assert m["from_stats"].attrs["real_input"] == "stats"
PYEOF

set +e
"$VARDP_BIN" eval --real "$TMP/half_a.h5" --fake "$TMP/half_b.h5" --out "$TMP/none.h5" > "$TMP/nonet.txt" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "images need a feature network" "$TMP/nonet.txt" || fail "images without a network: rc $rc"
echo "image inputs OK ($((SECONDS - T0)) s so far)"

# ---- vardp eval --run on a tiny trained + sampled run ----
T1=$SECONDS
"$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" \
  --set "model.var=$FIX/var_fixture.pth" --set "data.train=$TMP/data/train.h5" --set "data.test=$TMP/data/test.h5" \
  --set "output.dir=$TMP/run" --set train.steps=2 --set "eval.classifier=$TMP/cls.h5" > "$TMP/train.log" 2>&1 \
  || { cat "$TMP/train.log"; fail "train"; }
"$VARDP_BIN" sample --run "$TMP/run" --device cpu --per-class 6 > "$TMP/sample.log" 2>&1 \
  || { cat "$TMP/sample.log"; fail "sample --run"; }
"$VARDP_BIN" eval --run "$TMP/run" > "$TMP/run1.txt" 2>&1 || { cat "$TMP/run1.txt"; fail "eval --run"; }
grep -q "reference features cached in $TMP/data/test.h5.ref-" "$TMP/run1.txt" || { cat "$TMP/run1.txt"; fail "cache not written"; }
cp "$TMP/run/eval.h5" "$TMP/eval_first.h5"
mpirun_n 2 "$VARDP_BIN" eval --run "$TMP/run" > "$TMP/run2.txt" 2>&1 || { cat "$TMP/run2.txt"; fail "eval --run, 2 ranks"; }
grep -q "reference features from cache $TMP/data/test.h5.ref-" "$TMP/run2.txt" || { cat "$TMP/run2.txt"; fail "cache not reused"; }
[ "$(grep -c "eval: wrote" "$TMP/run2.txt")" -eq 1 ] || { cat "$TMP/run2.txt"; fail "2 ranks: not exactly one writer"; }

ckpt=$(ls "$TMP"/run/checkpoint-*.h5 | tail -n 1)
"$VARDP_BIN" sample --run "$TMP/run" --checkpoint "$ckpt" --device cpu --per-class 6 > "$TMP/sample2.log" 2>&1 \
  || { cat "$TMP/sample2.log"; fail "sample --run --checkpoint"; }
"$VARDP_BIN" eval --run "$TMP/run" --checkpoint "$ckpt" > "$TMP/run3.txt" 2>&1 || { cat "$TMP/run3.txt"; fail "eval --checkpoint"; }
ls "$TMP/run" > "$TMP/run_files.txt"
"$PY" - "$TMP" "$ckpt" <<'PYEOF'
import sys, os, h5py, numpy as np
t, ckpt = sys.argv[1], sys.argv[2]
step = int(os.path.basename(ckpt)[len("checkpoint-"):-3])
files = open(f"{t}/run_files.txt").read().split()
assert f"samples-{step:08d}.h5" in files and f"eval-{step:08d}.h5" in files, files
assert not [f for f in files if ".tmp-" in f], files
with h5py.File(f"{t}/run/eval.h5") as e, h5py.File(f"{t}/eval_first.h5") as first:
    assert e.attrs["format"] == "vardp.metrics.eval"
    assert e.attrs["step"] == 2 and e.attrs["checkpoint"].endswith(os.path.basename(ckpt)), dict(e.attrs)
    assert e.attrs["feature_net"] == "classifier" and e.attrs["n_fake"] == 24 and e.attrs["n_real"] == 160
    assert "[eval]" in e.attrs["config_toml"] and e.attrs["reference_cache"].startswith(f"{t}/data/test.h5.ref-")
    acc = e["class_accuracy"][()]
    assert 0.0 <= acc <= 1.0 and list(e["class_accuracy_counts"][()]) == [6, 6, 6, 6]
    assert list(e["pr/k"][()]) == [3]
    # The cached reference features give the same metrics as the freshly computed ones.
    assert e["fid"][()] == first["fid"][()] and e["class_accuracy"][()] == acc
    print(f"eval --run: step {e.attrs['step']}, FID {e['fid'][()]:.3f}, class accuracy {acc:.3f}")
with h5py.File(f"{t}/run/eval-{step:08d}.h5") as e, h5py.File(f"{t}/run/samples-{step:08d}.h5") as s:
    assert e.attrs["step"] == step == s.attrs["step"] and e.attrs["checkpoint"] == ckpt
    assert e.attrs["fake_path"].endswith(f"samples-{step:08d}.h5")
cache = [f for f in os.listdir(f"{t}/data") if f.startswith("test.h5.ref-")]
assert len(cache) == 1, cache
with h5py.File(f"{t}/data/{cache[0]}") as c:
    assert c.attrs["format"] == "vardp.eval.features" and c["features"].shape == (160, 32)
PYEOF

# Errors: no feature network configured -> exit 2 on every rank, nothing written, no hang.
set +e
timeout 120 mpirun -np 2 --oversubscribe "$VARDP_BIN" eval --run "$TMP/run" --set eval.classifier= --out "$TMP/x.h5" > "$TMP/err.txt" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "no feature network" "$TMP/err.txt" || { cat "$TMP/err.txt"; fail "no network: rc $rc"; }
[ ! -e "$TMP/x.h5" ] || fail "a metrics file was written after an error"
set +e
"$VARDP_BIN" eval --run "$TMP/run" --checkpoint "$TMP/run/nope.h5" > "$TMP/err2.txt" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "checkpoint not found" "$TMP/err2.txt" || { cat "$TMP/err2.txt"; fail "missing checkpoint: rc $rc"; }
echo "eval --run OK ($((SECONDS - T1)) s for the run part)"
echo "eval_images OK ($((SECONDS - T0)) s)"
