#!/usr/bin/env bash
# The token cache (issue 6): `vardp tokenize` on 1 and 2 ranks writes the same pool; its tokens
# equal the VQ-VAE tokens of the same images (`vardp score`, on images stored at the model size,
# where every view is the image itself); `vardp train` from the cache runs (DP, k = 2) and gives
# the same model on 1 and 2 ranks.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/train.h5" --n 12 --classes 4
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/exact.h5" --n 4 --classes 4 --resolution 80
TOK=(tokenize --vae "$FIX/vae_fixture.pth" --patch-nums 1,2,3,4,5 --device cpu)
"$VARDP_BIN" "${TOK[@]}" --data "$TMP/train.h5" --views 3 --seed 11 --hflip --out "$TMP/c1.h5" > "$TMP/t1.log" 2>&1 \
  || { cat "$TMP/t1.log"; fail "tokenize on 1 rank"; }
mpirun_n 2 "$VARDP_BIN" "${TOK[@]}" --data "$TMP/train.h5" --views 3 --seed 11 --hflip --out "$TMP/c2.h5" \
  > "$TMP/t2.log" 2>&1 || { cat "$TMP/t2.log"; fail "tokenize on 2 ranks"; }
"$VARDP_BIN" "${TOK[@]}" --data "$TMP/exact.h5" --views 2 --out "$TMP/exact_cache.h5" > "$TMP/t3.log" 2>&1 \
  || { cat "$TMP/t3.log"; fail "tokenize exact"; }
"$VARDP_BIN" score --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --data "$TMP/exact.h5" \
  --out "$TMP/score.h5" --device cpu > "$TMP/score.log" 2>&1 || { cat "$TMP/score.log"; fail "score"; }

# The 1- and 2-rank runs must draw the same DP coins to be comparable: one pinned run secret.
"$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$TMP/pinned.key"
train() {  # ranks name
  mpirun_n "$1" "$VARDP_BIN" train --set "dp.secret_file=$TMP/pinned.key" --config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" \
    --set "model.var=$FIX/var_fixture.pth" --set "data.train=$TMP/train.h5" --set "data.token_cache=$TMP/c1.h5" \
    --set "output.dir=$TMP/$2" --set train.steps=4 --set dp.enabled=true --set dp.noise_multiplier=0.8 \
    --set dp.sample_rate=0.5 --set dp.augmult=2 > "$TMP/$2.log" 2>&1 || { cat "$TMP/$2.log"; fail "train $2"; }
  grep -q "token cache" "$TMP/$2.log" || fail "$2: the token cache was not used"
}
train 1 run1
train 2 run2

"$PY" - "$TMP" <<'PYEOF'
import sys, h5py, numpy as np
tmp = sys.argv[1]
with h5py.File(f"{tmp}/c1.h5", "r") as a, h5py.File(f"{tmp}/c2.h5", "r") as b:
    assert a.attrs["format"] == "vardp.token_cache" and a.attrs["pool_views"] == 3
    assert a["tokens"].shape == (36, 55), a["tokens"].shape
    assert np.array_equal(a["tokens"][...], b["tokens"][...]), "1 and 2 ranks tokenised differently"
    t = a["tokens"][...].reshape(12, 3, 55)
    assert not all(np.array_equal(t[i, 0], t[i, 1]) for i in range(12)), "pool views are all the same"
with h5py.File(f"{tmp}/exact_cache.h5", "r") as c, h5py.File(f"{tmp}/score.h5", "r") as s:
    cache = c["tokens"][...].reshape(4, 2, 55).astype(np.int64)
    ref = s["tokens"][...]
    assert np.array_equal(cache[:, 0], ref) and np.array_equal(cache[:, 1], ref), "cache tokens != VQ-VAE tokens"
def trained(name):
    run = f"{tmp}/{name}"
    latest = open(run + "/latest").read().strip()
    with h5py.File(f"{run}/{latest}", "r") as f:
        g = f["trainable"]
        return {k: g[k][...].astype(np.float64) for k in g.attrs["keys"]}
a, b = trained("run1"), trained("run2")
num = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)
den = sum(float((a[k] ** 2).sum()) for k in a)
assert (num / den) ** 0.5 < 1e-5, (num / den) ** 0.5
print("token cache: identical on 1 and 2 ranks, equal to the VQ-VAE tokens; training from it rank-independent")
PYEOF
echo "token_cache OK"
