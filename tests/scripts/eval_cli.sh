#!/usr/bin/env bash
# vardp eval end to end: feature files written with h5py, metrics checked against NumPy
# (FID by eigenvalues, precision/recall/density/coverage by brute force), reference statistics
# reused as an input, and the usage errors.
set -euo pipefail
: "${VARDP_BIN:?VARDP_BIN must point to the vardp executable}"
PY=/usr/bin/python3
TMP="${VARDP_TEST_TMP:-/tmp}/eval_cli.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

fail() { echo "eval_cli: FAIL: $*" >&2; exit 1; }

# ---- inputs: real 400 x 24 (+ spatial 400 x 10), fake 300 x 24 shifted; integer-valued images ----
"$PY" - "$TMP" <<'PYEOF'
import sys, numpy as np, h5py
d = sys.argv[1]
rng = np.random.default_rng(5)
real = rng.normal(size=(400, 24)).astype(np.float32)
fake = (rng.normal(size=(300, 24)) * 1.2 + 0.3).astype(np.float32)
with h5py.File(f"{d}/real.h5", "w") as f:
    f["features"] = real
    f["spatial_features"] = rng.normal(size=(400, 10)).astype(np.float32)
with h5py.File(f"{d}/fake.h5", "w") as f:
    f["features"] = fake
    f["spatial_features"] = (rng.normal(size=(300, 10)) + 0.5).astype(np.float32)
with h5py.File(f"{d}/images.h5", "w") as f:
    f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
PYEOF

# ---- full evaluation ----
"$VARDP_BIN" eval --real "$TMP/real.h5" --fake "$TMP/fake.h5" --out "$TMP/m.h5" \
  --pr-k 3 5 --kid --threads 2 --block-rows 64 > "$TMP/stdout.txt" \
  || fail "vardp eval exited with $?"
cat "$TMP/stdout.txt"
for name in fid sfid precision@3 recall@3 density@3 coverage@3 precision@5 recall@5 density@5 \
            coverage@5 kid; do
  grep -q "^$name [-0-9.e+]*$" "$TMP/stdout.txt" || fail "no '$name' line on stdout"
done

"$PY" - "$TMP" <<'PYEOF'
import sys, numpy as np, h5py
d = sys.argv[1]
def load(name, key="features"):
    with h5py.File(f"{d}/{name}.h5") as f:
        return f[key][()].astype(np.float64)

def fid(a, b):
    ma, mb = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    r = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r @ sb @ r), 0, None)).sum()
    return ((ma - mb) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * tr

def prdc(real, fake, k):
    d2 = lambda x, y: ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    rr = np.sort(d2(real, real), axis=1)[:, k]
    rf = np.sort(d2(fake, fake), axis=1)[:, k]
    x = d2(real, fake)
    inside = x <= rr[:, None]
    return dict(precision=inside.any(0).mean(), recall=(x <= rf[None, :]).any(1).mean(),
                density=inside.sum(0).mean() / k, coverage=(x.min(1) <= rr).mean())

real, fake = load("real"), load("fake")
with h5py.File(f"{d}/m.h5") as m:
    assert m.attrs["format"] == "vardp.metrics.eval", m.attrs["format"]
    assert int(m.attrs["format_version"]) == 1
    assert int(m.attrs["n_real"]) == 400 and int(m.attrs["n_fake"]) == 300 and int(m.attrs["dim"]) == 24
    want = fid(real, fake)
    assert abs(m["fid"][()] - want) < 1e-9 * want, (m["fid"][()], want)
    t = m["fid_terms"]
    assert abs(t["mean_sq_diff"][()] + t["trace_sigma_real"][()] + t["trace_sigma_fake"][()]
               - 2 * t["trace_sqrt_product"][()] - m["fid"][()]) < 1e-9
    ws = fid(load("real", "spatial_features"), load("fake", "spatial_features"))
    assert abs(m["sfid"][()] - ws) < 1e-9 * ws, (m["sfid"][()], ws)
    assert list(m["pr/k"][()]) == [3, 5]
    assert m["pr"].attrs["membership"] == "le"
    for i, k in enumerate((3, 5)):
        ref = prdc(real, fake, k)
        for key, v in ref.items():
            assert abs(m[f"pr/{key}"][i] - v) < 1e-12, (key, k, m[f"pr/{key}"][i], v)
    assert "kid" in m and m["kid"][()] > 0
    assert m["timing/prdc_seconds"][()] >= 0
print("eval_cli: metrics file checked against NumPy")
PYEOF

# ---- reference statistics, then statistics as the real input ----
"$VARDP_BIN" eval --real "$TMP/real.h5" --stats-out "$TMP/ref_stats.h5" > "$TMP/stats.txt" \
  || fail "--stats-out exited with $?"
grep -q "^stats_out .* n=400 d=24 spatial_d=10" "$TMP/stats.txt" || fail "no stats_out line"
"$VARDP_BIN" eval --real "$TMP/ref_stats.h5" --fake "$TMP/fake.h5" --out "$TMP/m2.h5" \
  > "$TMP/stdout2.txt" || fail "eval from statistics exited with $?"
"$PY" - "$TMP" <<'PYEOF'
import sys, h5py
d = sys.argv[1]
with h5py.File(f"{d}/ref_stats.h5") as s:
    assert s.attrs["format"] == "vardp.eval.stats"
    assert s["mu"].shape == (24,) and s["sigma"].shape == (24, 24) and s["count"][()] == 400
    assert s["spatial_sigma"].shape == (10, 10)
with h5py.File(f"{d}/m.h5") as a, h5py.File(f"{d}/m2.h5") as b:
    assert abs(a["fid"][()] - b["fid"][()]) < 1e-9 * a["fid"][()], (a["fid"][()], b["fid"][()])
    assert abs(a["sfid"][()] - b["sfid"][()]) < 1e-9 * a["sfid"][()]
    assert b.attrs["real_input"] == "stats" and "pr" not in b   # k-NN metrics need features
print("eval_cli: statistics input gives the same FID")
PYEOF

# ---- usage errors ----
set +e
"$VARDP_BIN" eval --real "$TMP/images.h5" --fake "$TMP/fake.h5" --out "$TMP/m3.h5" \
  > "$TMP/img.txt" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "images input: exit code $rc, expected 2"
grep -q "images need a feature network: give --classifier" "$TMP/img.txt" || fail "images message"
[ ! -e "$TMP/m3.h5" ] || fail "a metrics file was left behind after an error"
set +e
"$VARDP_BIN" eval --real "$TMP/real.h5" --fake "$TMP/fake.h5" > /dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "--fake without --out: exit code $rc, expected 2"
for bad in "--real $TMP/real.h5 --fake $TMP/fake.h5 --out $TMP/m4.h5 --checkpoint c.h5" \
           "--run $TMP --real $TMP/real.h5" "--run $TMP"; do
  set +e
  # shellcheck disable=SC2086
  "$VARDP_BIN" eval $bad > "$TMP/bad.txt" 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || { cat "$TMP/bad.txt"; fail "'eval $bad': exit code $rc, expected 2"; }
done
grep -q "not a run directory" "$TMP/bad.txt" || fail "--run on a directory without config.toml: message"
echo "eval_cli: OK"
