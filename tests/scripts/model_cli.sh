#!/usr/bin/env bash
# End-to-end: `vardp inspect`, `vardp score` and `vardp sample` on the official tiny fixture
# checkpoints (../shared/fixtures/var_official_tiny), checked with h5py.
set -euo pipefail
: "${VARDP_BIN:?VARDP_BIN must point to the vardp binary}"
SHARED="${VARDP_SHARED_DIR:-$(cd "$(dirname "$0")/../../../shared" && pwd)}"
FIX="$SHARED/fixtures/var_official_tiny"
PY=/usr/bin/python3
BASE="${VARDP_TEST_TMP:-/tmp}"
mkdir -p "$BASE"
TMP=$(mktemp -d "$BASE/model_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=1

fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- inspect --------------------------------------------------------------------------------
"$VARDP_BIN" inspect "$FIX/var_fixture.pth" --check > "$TMP/var.txt"
grep -q "^model: VAR" "$TMP/var.txt" || fail "inspect: VAR not recognised"
grep -q "^parameters: 670,852$" "$TMP/var.txt" || fail "inspect: VAR parameter count"
grep -q "depth=2, embed_dim=128, num_heads=2" "$TMP/var.txt" || fail "inspect: VAR config"
grep -q "patch_nums=(1,2,3,4,5)" "$TMP/var.txt" || fail "inspect: patch numbers"
grep -q "strict load: OK" "$TMP/var.txt" || fail "inspect: strict load"
grep -q "blocks.0.attn.mat_qkv.weight  *\[384, 128\]  *float32" "$TMP/var.txt" || fail "inspect: tensor list"
"$VARDP_BIN" inspect "$FIX/vae_fixture.pth" --check --no-tensors > "$TMP/vae.txt"
grep -q "^model: VQ-VAE" "$TMP/vae.txt" || fail "inspect: VQ-VAE not recognised"
grep -q "^parameters: 4,407,443$" "$TMP/vae.txt" || fail "inspect: VQ-VAE parameter count"
grep -q "ch=32, ch_mult=(1,1,2,2,4)" "$TMP/vae.txt" || fail "inspect: VQ-VAE config"
grep -q "share_quant_resi=4" "$TMP/vae.txt" || fail "inspect: Phi sharing"
echo "inspect OK"

# ---- score ------------------------------------------------------------------------------------
"$PY" - "$FIX/fixture.h5" "$TMP" <<'EOF'
import sys, h5py, numpy as np
fx, tmp = sys.argv[1], sys.argv[2]
with h5py.File(fx, "r") as f:
    x = f["inputs/images"][...]                      # (B, 3, 80, 80) in [-1, 1]
u8 = np.clip(np.round((x + 1) / 2 * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
labels = np.array([3, 7, 0, 9], dtype=np.int64)
with h5py.File(tmp + "/data.h5", "w") as f:
    f["images"] = u8
    f["labels"] = labels
# Same pictures at 96x96 (nearest upscaling): exercises the resize + centre-crop path.
big = u8.repeat(6, axis=1).repeat(6, axis=2)[:, ::5, ::5][:, :96, :96]
with h5py.File(tmp + "/data96.h5", "w") as f:
    f["images"] = np.ascontiguousarray(big)
    f["labels"] = labels
EOF
"$VARDP_BIN" score --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --data "$TMP/data.h5" \
  --out "$TMP/score.h5" --batch 3 --device cpu
"$VARDP_BIN" score --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --data "$TMP/data.h5" \
  --out "$TMP/score_b1.h5" --batch 1 --device cpu
"$VARDP_BIN" score --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --data "$TMP/data96.h5" \
  --out "$TMP/score96.h5" --device cpu
"$PY" - "$TMP" <<'EOF'
import sys, h5py, numpy as np
tmp = sys.argv[1]
with h5py.File(tmp + "/score.h5", "r") as f, h5py.File(tmp + "/score_b1.h5", "r") as g:
    assert f.attrs["format"] == "vardp.score", f.attrs["format"]
    tok, nll, mean = f["tokens"][...], f["nll"][...], f["nll_mean"][...]
    assert tok.shape == (4, 55) and tok.dtype == np.int64, (tok.shape, tok.dtype)
    assert nll.shape == (4, 55) and nll.dtype == np.float32, (nll.shape, nll.dtype)
    assert mean.shape == (4,), mean.shape
    assert (tok >= 0).all() and (tok < 256).all()
    assert np.isfinite(nll).all() and (nll >= 0).all()
    assert np.allclose(mean, nll.mean(axis=1), rtol=1e-5, atol=1e-6)
    assert (f["labels"][...] == [3, 7, 0, 9]).all()
    # The batch split does not change the result.
    assert (g["tokens"][...] == tok).all()
    assert np.allclose(g["nll"][...], nll, rtol=1e-5, atol=1e-5)
with h5py.File(tmp + "/score96.h5", "r") as f:
    assert f["tokens"].shape == (4, 55) and np.isfinite(f["nll"][...]).all()
print("score OK")
EOF

# ---- sample -----------------------------------------------------------------------------------
# Greedy (top-k 1) with the fixture's arguments reproduces the official run exactly.
"$VARDP_BIN" sample --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --classes 1,5,8 \
  --cfg 1.5 --top-k 1 --top-p 0 --seed 7 --out "$TMP/greedy.h5" --device cpu
"$VARDP_BIN" sample --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --classes 1,5,8 \
  --per-class 2 --batch 4 --cfg 1.5 --top-k 64 --top-p 0.9 --seed 3 --out "$TMP/sampled.h5" --device cpu
"$VARDP_BIN" sample --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --classes 1,5,8 \
  --per-class 2 --batch 4 --cfg 1.5 --top-k 64 --top-p 0.9 --seed 3 --out "$TMP/sampled2.h5" --device cpu
"$PY" - "$TMP" "$FIX/fixture.h5" <<'EOF'
import sys, h5py, numpy as np
tmp, fx = sys.argv[1], sys.argv[2]
with h5py.File(tmp + "/greedy.h5", "r") as f, h5py.File(fx, "r") as r:
    assert f.attrs["format"] == "vardp.samples"
    run = r["ar/greedy_cfg1p5"]
    want_tok = np.concatenate([run["tokens/scale_%d" % s][...] for s in range(5)], axis=1)
    assert (f["tokens"][...] == want_tok).all(), "greedy tokens differ from the official run"
    want_img = np.clip(np.round(run["images_01"][...] * 255), 0, 255).transpose(0, 2, 3, 1)
    img = f["images"][...]
    assert img.shape == (3, 80, 80, 3) and img.dtype == np.uint8, (img.shape, img.dtype)
    assert np.abs(img.astype(int) - want_img.astype(int)).max() <= 1
    assert (f["labels"][...] == [1, 5, 8]).all()
with h5py.File(tmp + "/sampled.h5", "r") as f, h5py.File(tmp + "/sampled2.h5", "r") as g:
    assert f["images"].shape == (6, 80, 80, 3) and f["tokens"].shape == (6, 55)
    assert (f["labels"][...] == [1, 1, 5, 5, 8, 8]).all()
    assert (f["tokens"][...] == g["tokens"][...]).all(), "same seed, different samples"
    assert (f["images"][...] == g["images"][...]).all()
print("sample OK")
EOF

# ---- errors -----------------------------------------------------------------------------------
set +e
"$VARDP_BIN" sample --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --classes 1,99 \
  --out "$TMP/bad.h5" --device cpu > "$TMP/err.txt" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "sample with a bad class: exit code $rc, expected 2"
grep -q "99" "$TMP/err.txt" || fail "sample with a bad class: message does not name it"
[ ! -e "$TMP/bad.h5" ] || fail "sample with a bad class left an output file"
set +e
"$VARDP_BIN" score --vae "$FIX/var_fixture.pth" --var "$FIX/var_fixture.pth" --data "$TMP/data.h5" \
  --out "$TMP/bad.h5" --device cpu > "$TMP/err2.txt" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "score with a VAR file as --vae succeeded"
grep -qi "not a VQ-VAE" "$TMP/err2.txt" || fail "score with a VAR file as --vae: unclear message"
echo "model_cli OK"
