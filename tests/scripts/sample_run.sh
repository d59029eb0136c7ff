#!/usr/bin/env bash
# `vardp sample --run DIR` (issue 7, acceptance 3): the evaluation sample set of a training run,
# as many images per class as its test split has, is the same on 1 and 2 ranks; the shards and
# their index open as one dataset in h5py; a PNG contact sheet is written.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/train.h5" --n 16 --classes 4
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/test.h5" --n 7 --classes 4 --seed 5 --split test
"$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" \
  --set "model.var=$FIX/var_fixture.pth" --set "data.train=$TMP/train.h5" --set "data.test=$TMP/test.h5" \
  --set "output.dir=$TMP/run" --set train.steps=2 > "$TMP/train.log" 2>&1 || { cat "$TMP/train.log"; fail "train"; }

mkdir -p "$TMP/one" "$TMP/two"
"$VARDP_BIN" sample --run "$TMP/run" --device cpu --seed 3 --out "$TMP/one/samples.h5" > "$TMP/s1.log" 2>&1 \
  || { cat "$TMP/s1.log"; fail "sample on 1 rank"; }
mpirun_n 2 "$VARDP_BIN" sample --run "$TMP/run" --device cpu --seed 3 --out "$TMP/two/samples.h5" > "$TMP/s2.log" 2>&1 \
  || { cat "$TMP/s2.log"; fail "sample on 2 ranks"; }
[ -s "$TMP/two/samples.png" ] || fail "no contact sheet"

"$PY" - "$TMP" <<'PYEOF'
import sys, h5py, numpy as np
tmp = sys.argv[1]
with h5py.File(f"{tmp}/one/samples.h5", "r") as a, h5py.File(f"{tmp}/two/samples.h5", "r") as b:
    assert a.attrs["format"] == "vardp.samples"
    assert list(b.attrs["shards"]) == ["samples-shard-0-of-2.h5", "samples-shard-1-of-2.h5"], b.attrs["shards"]
    assert b["images"].is_virtual
    ia, ib = a["images"][...], b["images"][...]
    la, lb = a["labels"][...], b["labels"][...]
    assert ia.shape == (7, 80, 80, 3), ia.shape
    assert list(la) == [0, 0, 1, 1, 2, 2, 3], la    # per class as many as the test split has
    assert np.array_equal(la, lb), (la, lb)
    assert np.array_equal(ia, ib), "1 and 2 ranks sampled different images"
    assert ia.std() > 0
    print("sample --run: 7 images identical on 1 and 2 ranks; step", b.attrs["step"])
PYEOF
echo "sample_run OK"
