#!/usr/bin/env bash
# The release boundary of a DP run (ARCHITECTURE invariants 4, 5, 6; include/vardp/train/release.hpp;
# docs/file-formats.md "Releasable files"). Two DP runs with the SAME pinned secret and identical
# config strings, one on a dataset D (24 examples) and one on D' = D plus one example, each taken
# through merge, sample --run (2 ranks: 2 shards + index), sample --var (of the merged model) and
# eval (--run, and --real/--fake on the sample --var output). Then, on every releasable file:
#  1. the secret (its 32 raw bytes, its hex text) is in none of them, nor in config.toml or a log;
#  2. each carries /privacy with total_steps = the run's steps, and the root epsilon / delta /
#     accountant / dp_enabled / privacy_source stamp;
#  3. its attributes (every object's, names and values), its object names and its non-model
#     datasets are the same for D and D', except the public allow-list of docs/file-formats.md
#     (created_utc, N and what is planned from N, results computed from the released model);
#     N-derived values must match N, per-step FLOPs must be a plan (constant over the steps), and
#     no name may look like a diagnostic (wall time, loss, norm, clip, lot size, data hash).
# A self-test then writes a realised lot size, a wall time and a realised per-step series into
# copies of the files and requires the checker to catch each.
# The evaluation's feature network is a tiny `vardp train-classifier` CNN trained on the public
# test split (never on D), so eval runs in a few seconds.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
T0=$SECONDS

# ---- D, D' = D + one example, the public test split, the pinned secret ----
mkdir -p "$TMP/a" "$TMP/b"
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/a/train.h5" --n 24 --classes 4
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/b/train.h5" --n 25 --classes 4
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/a/test.h5" --n 8 --classes 4 --seed 5 --split test
cp "$TMP/a/test.h5" "$TMP/b/test.h5"
"$PY" - "$TMP" <<'PYEOF' || fail "D' is not D plus one example"
import sys, h5py, numpy as np
t = sys.argv[1]
with h5py.File(f"{t}/a/train.h5") as a, h5py.File(f"{t}/b/train.h5") as b:
    assert a["images"].shape[0] + 1 == b["images"].shape[0]
    assert np.array_equal(a["images"][()], b["images"][:-1]) and np.array_equal(a["labels"][()], b["labels"][:-1])
PYEOF
"$VARDP_BIN" train-classifier --train "$TMP/a/test.h5" --out "$TMP/a/cls.h5" --epochs 1 --batch 8 --width 4 \
  --feature-dim 8 --threads 1 > "$TMP/cls.log" 2>&1 || { cat "$TMP/cls.log"; fail "train-classifier"; }
cp "$TMP/a/cls.h5" "$TMP/b/cls.h5"
key=$("$PY" -c 'import secrets; print(secrets.token_hex(32))')
for side in a b; do
  (umask 077; printf '%s\n' "$key" > "$TMP/$side/secret.hex")
done

# ---- the same commands, with the same relative paths, in each side's directory ----
pipeline() {  # side
  local side=$1
  cd "$TMP/$side"
  mpirun_n 2 "$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" \
    --set "model.var=$FIX/var_fixture.pth" --set data.train=train.h5 --set data.test=test.h5 --set output.dir=run \
    --set dp.enabled=true --set dp.noise_multiplier=1.0 --set dp.sample_rate=0.25 --set dp.target_delta=1e-3 \
    --set dp.secret_file=secret.hex --set eval.classifier=cls.h5 --set eval.per_class=2 \
    > "$TMP/$side-train.log" 2>&1 || { cat "$TMP/$side-train.log"; fail "$side: train"; }
  "$VARDP_BIN" merge --run run --out merged.h5 > "$TMP/$side-merge.log" 2>&1 \
    || { cat "$TMP/$side-merge.log"; fail "$side: merge"; }
  mpirun_n 2 "$VARDP_BIN" sample --run run --device cpu > "$TMP/$side-sample-run.log" 2>&1 \
    || { cat "$TMP/$side-sample-run.log"; fail "$side: sample --run"; }
  "$VARDP_BIN" sample --vae "$FIX/vae_fixture.pth" --var merged.h5 --classes 0,1,2,3 --per-class 2 --top-k 1 \
    --seed 1 --device cpu --out sampled.h5 > "$TMP/$side-sample-var.log" 2>&1 \
    || { cat "$TMP/$side-sample-var.log"; fail "$side: sample --var"; }
  "$VARDP_BIN" eval --run run --threads 1 > "$TMP/$side-eval-run.log" 2>&1 \
    || { cat "$TMP/$side-eval-run.log"; fail "$side: eval --run"; }
  "$VARDP_BIN" eval --real test.h5 --fake sampled.h5 --classifier cls.h5 --threads 1 --out eval_var.h5 \
    > "$TMP/$side-eval-var.log" 2>&1 || { cat "$TMP/$side-eval-var.log"; fail "$side: eval --fake"; }
  cd - > /dev/null
}
pipeline a
pipeline b
echo "two DP pipelines done ($((SECONDS - T0)) s)"

# A model of unknown origin (the published-style fixture .pth): no claim, and no dp_enabled.
"$VARDP_BIN" sample --vae "$FIX/vae_fixture.pth" --var "$FIX/var_fixture.pth" --classes 0 --top-k 1 --device cpu \
  --out "$TMP/unknown.h5" > "$TMP/unknown.log" 2>&1 || { cat "$TMP/unknown.log"; fail "sample of the fixture"; }

"$PY" - "$TMP" "$key" <<'PYEOF' || fail "release boundary"
import glob, math, os, re, shutil, sys
import h5py, numpy as np

tmp, key_hex = sys.argv[1], sys.argv[2]
SIDES = {"D": (f"{tmp}/a", 24), "D'": (f"{tmp}/b", 25)}
STEPS, Q, SIGMA, DELTA = 12, 0.25, 1.0, 1e-3   # train_tiny.toml's steps; the --set values above
RELEASABLE = ["run/flops.h5", "merged.h5", "run/samples.h5", "run/samples-shard-0-of-2.h5",
              "run/samples-shard-1-of-2.h5", "sampled.h5", "run/eval.h5", "eval_var.h5"]

# The allow-list of docs/file-formats.md ("What may differ between neighbouring datasets"), by
# attribute or object name. Public operator metadata:
OPERATOR = {"created_utc", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT"}
# N and what is fixed from N before training (q = B/N by default, delta = 1/N by default, sigma
# calibrated against them, epsilon, the expected lot round(qN), planned FLOPs):
FROM_N = {"dataset_size", "batch_size", "total_steps", "sample_rate", "noise_multiplier", "delta", "target_delta",
          "epsilon", "epsilon_delta"}
# Results computed from the released model (and public data): eval metrics and their timings.
MODEL_ATTRS = {"rank_used"}
# Names of non-private diagnostics (invariant 5), a hash of the training images, the secret.
DENY = re.compile(r"wall|second|elapsed|time|loss|norm|clip|lot_size|realised|tflops|samples_per_s|"
                  r"images_sha256|secret|fingerprint", re.I)


def plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return tuple(plain(x) for x in v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    return v


def same(x, y):
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y


def model_object(rel, name):
    """Objects whose values are the released model or computed from it (DP post-processing)."""
    base = os.path.basename(rel)
    if base == "merged.h5":
        return name.startswith("tensors/")
    if base.startswith("sample"):
        return name in ("images", "tokens")
    if base.startswith("eval"):
        return not name.startswith("privacy")   # every metric (and /timing) comes from the samples
    return False


# A DP run's planned FLOPs follow from the expected lot round(qN): 6 for both N = 24 and 25 here,
# so this pair of runs must have identical flops.h5 datasets (a realised lot would break that).
SAME_PLAN = math.floor(Q * 24 + 0.5) == math.floor(Q * 25 + 0.5)


def from_n_object(rel, name):
    """Datasets fixed from N before training: the ledger and a DP run's planned FLOPs."""
    return name.startswith("privacy/") or (os.path.basename(rel) == "flops.h5" and not SAME_PLAN)


def scan(path):
    """{(object, attribute): value}, {dataset: value} of one file (virtual datasets read through)."""
    attrs, data = {}, {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for k, v in obj.attrs.items():
                attrs[(name, k)] = plain(v)
            if isinstance(obj, h5py.Dataset):
                data[name] = obj[()]
        visit("", f)
        f.visititems(visit)
    return attrs, data


def problems(files):
    """files: {side: {rel: path}} -> list of violations of checks 2 and 3."""
    out = []
    scans = {s: {rel: scan(p) for rel, p in fs.items()} for s, fs in files.items()}
    for rel in RELEASABLE:
        (sa, (aa, da)), (sb, (ab, db)) = [(s, scans[s][rel]) for s in SIDES]
        where = rel
        # Names: the same objects and attributes on both sides, none that looks like a diagnostic.
        if set(da) != set(db):
            out.append(f"{where}: datasets differ: {sorted(set(da) ^ set(db))}")
        if set(aa) != set(ab):
            out.append(f"{where}: attributes differ: {sorted(set(aa) ^ set(ab))}")
        # (Model tensors and eval results, e.g. /timing, are the release or computed from it.)
        for name in [n for n in da if not model_object(rel, n)] + [f"{o}@{k}" for o, k in aa]:
            if DENY.search(name):
                out.append(f"{where}: '{name}' looks like a non-private diagnostic")
        # Values of attributes: equal unless allow-listed.
        for key in set(aa) & set(ab):
            o, k = key
            if same(aa[key], ab[key]) or k in OPERATOR or k in FROM_N:
                continue
            if k in MODEL_ATTRS and model_object(rel, o):
                continue
            out.append(f"{where}: attribute {o or '/'}@{k} differs between D and D': {aa[key]!r} vs {ab[key]!r}")
        # Values of datasets that are neither the model nor computed from it nor planned from N.
        for name in set(da) & set(db):
            if model_object(rel, name) or from_n_object(rel, name):
                continue
            x, y = np.asarray(da[name]), np.asarray(db[name])
            if x.shape != y.shape or not np.array_equal(x, y):
                out.append(f"{where}: dataset {name} differs between D and D'")
        for side, (attrs, data) in ((sa, (aa, da)), (sb, (ab, db))):
            n = SIDES[side][1]
            # N-derived values must be what N gives.
            if ("", "dataset_size") in attrs and attrs[("", "dataset_size")] != n:
                out.append(f"{where} ({side}): dataset_size {attrs[('', 'dataset_size')]} != N = {n}")
            if ("", "batch_size") in attrs and attrs[("", "batch_size")] != math.floor(Q * n + 0.5):
                out.append(f"{where} ({side}): batch_size {attrs[('', 'batch_size')]} is not round(qN)")
            # Per-step FLOPs of a DP run are a plan: one value for every step. A realised Poisson
            # lot would make them vary.
            for name, v in data.items():
                if name.startswith("steps/") and name.endswith("/value") and len(np.unique(v)) != 1:
                    out.append(f"{where} ({side}): {name} varies over the steps (realised, not planned): {v}")
            # Check 2: the stamp and the ledger.
            r = {k: v for (o, k), v in attrs.items() if o == ""}
            if r.get("privacy_source") not in ("run", "inherited") or r.get("dp_enabled") != 1:
                out.append(f"{where} ({side}): stamp {r.get('privacy_source')!r} dp_enabled {r.get('dp_enabled')!r}")
            if not (isinstance(r.get("epsilon"), float) and 0 < r["epsilon"] < math.inf):
                out.append(f"{where} ({side}): epsilon {r.get('epsilon')!r}")
            if r.get("delta") != DELTA or r.get("accountant") != "rdp":
                out.append(f"{where} ({side}): delta {r.get('delta')!r} accountant {r.get('accountant')!r}")
            p = {k: v for (o, k), v in attrs.items() if o == "privacy"}
            if p.get("format") != "vardp.privacy_ledger" or p.get("total_steps") != STEPS:
                out.append(f"{where} ({side}): /privacy {p}")
            elif p.get("epsilon") != r.get("epsilon") or p.get("epsilon_delta") != DELTA:
                out.append(f"{where} ({side}): /privacy epsilon {p.get('epsilon')} != root {r.get('epsilon')}")
            elif list(data["privacy/sample_rate"]) != [Q] or list(data["privacy/noise_multiplier"]) != [SIGMA]:
                out.append(f"{where} ({side}): ledger segments {data['privacy/sample_rate']}")
    return out


files = {s: {rel: f"{d}/{rel}" for rel in RELEASABLE} for s, (d, _) in SIDES.items()}
for s in files:
    for rel, p in files[s].items():
        assert os.path.exists(p), p

# ---- check 1: the secret ----
key = bytes.fromhex(key_hex)
needles = {"raw": key, "hex": key_hex.encode(), "HEX": key_hex.upper().encode()}
private_text = [f"{d}/run/config.toml" for d, _ in SIDES.values()] + glob.glob(f"{tmp}/*.log")
for path in [p for fs in files.values() for p in fs.values()] + private_text:
    blob = open(path, "rb").read()
    for what, needle in needles.items():
        assert needle not in blob, f"{path} holds the run secret ({what})"
print(f"check 1: the secret is in none of {len(RELEASABLE) * 2} releasable files, config.toml or "
      f"{len(private_text) - 2} logs")

# ---- checks 2 and 3 ----
found = problems(files)
assert not found, "\n".join(found)
with h5py.File(files["D"]["run/flops.h5"]) as f:
    eps, pflops = f.attrs["epsilon"], f["total_pflops"][()]
print(f"checks 2, 3: {len(RELEASABLE)} releasable files per run stamped (epsilon {eps:.3f} at delta {DELTA}, "
      f"{STEPS} steps) and equal between D and D' up to the allow-list; planned {pflops:.3g} PFLOP")

# Sensitivity: did the neighbouring runs differ at all where a leak would show? (private metrics.h5)
def realised(side):
    with h5py.File(f"{SIDES[side][0]}/run/metrics.h5") as f:
        return f["metrics/lot_size/value"][()], f["metrics/step_time/value"][()]
lots = {s: realised(s)[0] for s in SIDES}
lots_differ = not np.array_equal(lots["D"], lots["D'"])
lot_d, lot_dp = lots["D"].astype(int).tolist(), lots["D'"].astype(int).tolist()
print(f"realised lot sizes (private metrics.h5): D {lot_d}, D' {lot_dp}")

# ---- self-test of the checker: leaks it must catch ----
mut = {s: {} for s in SIDES}
for s, sub in (("D", "a"), ("D'", "b")):
    for rel, p in files[s].items():   # the shards land next to their index, as its VDS expects
        q = f"{tmp}/mut/{sub}/{rel}"
        os.makedirs(os.path.dirname(q), exist_ok=True)
        shutil.copy(p, q)
        mut[s][rel] = q
for s in SIDES:
    lot, step_time = realised(s)
    with h5py.File(mut[s]["merged.h5"], "a") as f:      # an innocent-looking name: caught by D vs D'
        f.attrs["mean_examples"] = float(lot.mean())
    with h5py.File(mut[s]["run/samples.h5"], "a") as f:  # a wall time
        f.attrs["duration_s"] = float(step_time.sum())
    with h5py.File(mut[s]["run/flops.h5"], "a") as f:    # per-step FLOPs from the realised lots
        del f["steps/rows/value"]
        f["steps/rows/value"] = lot * 2.0
found = problems(mut)
print("self-test: the checker reports\n  " + "\n  ".join(found))
assert any("samples.h5: attribute /@duration_s differs" in x for x in found), "a wall time went unnoticed"
assert any("steps/rows/value varies" in x for x in found) or len(np.unique(lots["D"])) == 1, \
    "a realised per-step series went unnoticed"
if lots_differ:
    assert any("merged.h5: attribute /@mean_examples differs" in x for x in found), "a realised lot size went unnoticed"
else:  # the extra example was never drawn with this secret (probability 0.75^12, about 3 %)
    print("note: the extra example of D' was in no lot with this secret; the lot-size probe is vacuous this time")

# ---- a model of unknown origin: no claim ----
with h5py.File(f"{tmp}/unknown.h5") as f:
    assert f.attrs["privacy_source"] == "unknown" and "dp_enabled" not in f.attrs and "privacy" not in f, dict(f.attrs)
    assert f.attrs["epsilon"] == math.inf and f.attrs["delta"] == 1.0 and f.attrs["accountant"] == "none"
print("unknown provenance: privacy_source = unknown, epsilon = inf, no dp_enabled")
PYEOF
echo "release_boundary OK ($((SECONDS - T0)) s)"
