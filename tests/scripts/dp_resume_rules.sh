#!/usr/bin/env bash
# Accounting with no way around it (privacy issue, acceptance 3), each case through `vardp train`:
#  1. a plain run's checkpoint resumed as DP is refused, even with output.force_resume;
#  2. a checkpoint whose ledger accounts fewer steps than the model took is refused (force too);
#  3. a checkpoint from before secret coins (format 1: noise keyed by train.seed) is refused;
#  4. a secret.key that is not the one the steps were drawn with, or a missing one, is refused;
#     so is an empty `latest` (never read as a fresh start over the checkpoints);
#  5. an orphan checkpoint (complete, newer than `latest`: killed between write and marker) is
#     removed on resume, and the replayed steps reproduce it bit for bit (same coins);
#  6. a token cache made with another VQ-VAE than model.vae is refused with a clear error;
#  7. delta >= 1/N prints a warning; so does sigma = 0 (allowed for tests and audits), which
#     reports epsilon = inf.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/d.h5" --n 12 --classes 4

train() {  # name [--set ...]; exit code in $rc, log in $TMP/<name>.<n>.log
  local name=$1
  shift
  n=$((${n:-0} + 1))
  log="$TMP/$name.$n.log"
  set +e
  "$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" \
    --set "model.var=$FIX/var_fixture.pth" --set "data.train=$TMP/d.h5" --set "output.dir=$TMP/$name" \
    --set train.steps=4 --set output.checkpoint_every=2 --set dp.noise_multiplier=0.8 "$@" > "$log" 2>&1
  rc=$?
  set -e
}
expect_refused() {  # what, message pattern
  [ $rc -eq 2 ] || { cat "$log"; fail "$1: exit code $rc, expected 2"; }
  grep -q "$2" "$log" || { cat "$log"; fail "$1: no message matching '$2'"; }
}
ckpt() { echo "$TMP/$1/checkpoint-0000000$2.h5"; }

# 1. plain -> DP.
train plain --set dp.enabled=false
[ $rc -eq 0 ] || { cat "$log"; fail "plain run"; }
rm "$TMP/plain/DONE"
train plain --set dp.enabled=true --set output.force_resume=true --set train.steps=6
expect_refused "plain resumed as DP" "written by a non-private run"

# A finished DP run to tamper with (copies of it for each case).
train dp --set dp.enabled=true
[ $rc -eq 0 ] || { cat "$log"; fail "DP run"; }
grep -q "is >= 1/N" "$log" || { cat "$log"; fail "7: no warning for delta = 1/N"; }
train dpsmall --set dp.enabled=true --set dp.target_delta=1e-5
grep -q "is >= 1/N" "$log" && fail "7: warning for delta << 1/N"
train nonoise --set dp.enabled=true --set dp.noise_multiplier=0.0 --set train.steps=1
[ $rc -eq 0 ] || { cat "$log"; fail "sigma = 0 run (allowed for tests and audits)"; }
grep -q "noise_multiplier = 0: no noise, epsilon is infinite" "$log" || { cat "$log"; fail "7: no warning for sigma = 0"; }
grep -q "privacy spent: epsilon = inf" "$log" || { cat "$log"; fail "7: sigma = 0 does not report epsilon = inf"; }
copy() { rm -rf "$TMP/$1"; cp -a "$TMP/dp" "$TMP/$1"; rm -f "$TMP/$1/DONE"; }

# 2. ledger short of the step count (force_resume does not help).
copy short
"$PY" - "$(ckpt short 4)" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    g = f["privacy"]
    steps = g["steps"][...]
    steps[-1] -= 1
    del g["steps"]
    g["steps"] = steps
    g.attrs["total_steps"] = np.int64(steps.sum())
PYEOF
train short --set dp.enabled=true --set output.force_resume=true --set train.steps=6
expect_refused "short ledger" "ledger accounts 3 DP steps but the model has taken 4"

# 3. a format-1 checkpoint: coins keyed by the public seed.
copy old
"$PY" - "$(ckpt old 4)" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    f.attrs["format_version"] = np.int64(1)
    del f.attrs["secret_source"], f.attrs["secret_fingerprint"]
PYEOF
train old --set dp.enabled=true --set output.force_resume=true --set train.steps=6
expect_refused "format-1 checkpoint" "keyed by the public train.seed"
# ... and a release made from it states no guarantee (its ledger's epsilon would be false).
"$VARDP_BIN" merge --run "$TMP/old" --out "$TMP/old_merged.h5" > "$TMP/old_merge.log" 2>&1 ||
  { cat "$TMP/old_merge.log"; fail "merge of a format-1 run"; }
grep -q "predates secret coins" "$TMP/old_merge.log" || { cat "$TMP/old_merge.log"; fail "no warning on merge"; }
"$PY" - "$TMP/old_merged.h5" <<'PYEOF'
import sys, math, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert math.isinf(f.attrs["epsilon"]) and f.attrs["dp_enabled"] == 0, dict(f.attrs)
    assert "privacy" not in f, "a format-1 model carries a ledger"
PYEOF

# 4. another secret.key; no secret.key.
copy swapped
"$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$TMP/swapped/secret.key"
train swapped --set dp.enabled=true --set output.force_resume=true --set train.steps=6
expect_refused "swapped secret" "is not the one the checkpoint's steps were drawn with"
copy nokey
rm "$TMP/nokey/secret.key"
train nokey --set dp.enabled=true --set output.force_resume=true --set train.steps=6
expect_refused "missing secret" "has checkpoints but no secret.key"

# 4b. an empty `latest` is refused, never read as a fresh start over the checkpoints.
copy emptylatest
: > "$TMP/emptylatest/latest"
sums=$(sha256sum "$TMP"/emptylatest/checkpoint-*.h5)
train emptylatest --set dp.enabled=true
expect_refused "empty latest" "latest. is empty"
[ "$(sha256sum "$TMP"/emptylatest/checkpoint-*.h5)" = "$sums" ] || fail "empty latest: checkpoints changed"

# 4c. a checkpoint beyond the plan (train.steps lowered) is refused, not finished with "loss 0".
copy beyond
train beyond --set dp.enabled=true --set output.force_resume=true --set train.steps=2
expect_refused "checkpoint beyond the plan" "beyond the 2 steps this run plans"
[ ! -e "$TMP/beyond/DONE" ] || fail "checkpoint beyond the plan: DONE written"

# 5. orphan: `latest` names step 2 although the complete step-4 checkpoint exists (a run of its
# own: the resolved config names its directory, and a resume must find it unchanged).
train orphan --set dp.enabled=true
[ $rc -eq 0 ] || { cat "$log"; fail "orphan: first run"; }
cp "$(ckpt orphan 4)" "$TMP/orphan_reference.h5"
rm "$TMP/orphan/DONE"
echo "checkpoint-00000002.h5" > "$TMP/orphan/latest"
train orphan --set dp.enabled=true
[ $rc -eq 0 ] || { cat "$log"; fail "orphan: resume"; }
grep -q "removed .*checkpoint-00000004.h5: written after the checkpoint" "$log" || { cat "$log"; fail "orphan: not removed"; }
grep -q "resumed from .*checkpoint-00000002.h5" "$log" || { cat "$log"; fail "orphan: did not resume from step 2"; }
"$PY" - "$TMP/orphan_reference.h5" "$(ckpt orphan 4)" <<'PYEOF'
import sys, h5py, numpy as np
def tensors(path):
    with h5py.File(path, "r") as f:
        g = f["trainable"]
        return {k: g[k][...] for k in g.attrs["keys"]}, int(f["privacy"].attrs["total_steps"])
(a, la), (b, lb) = tensors(sys.argv[1]), tensors(sys.argv[2])
assert la == lb == 4, (la, lb)
for k in a:
    assert np.array_equal(a[k], b[k]), f"replayed steps differ from the orphan they replaced: {k}"
print("orphan: replayed steps 3-4 are bit-identical to the removed checkpoint; ledger 4 steps")
PYEOF

# 6. token cache from another VQ-VAE (same weights converted to HDF5: another file, another hash).
"$VARDP_BIN" tokenize --vae "$FIX/vae_fixture.pth" --patch-nums 1,2,3,4,5 --device cpu --data "$TMP/d.h5" \
  --views 2 --out "$TMP/cache.h5" > "$TMP/tok.log" 2>&1 || { cat "$TMP/tok.log"; fail "tokenize"; }
"$VARDP_BIN" convert "$FIX/vae_fixture.pth" "$TMP/vae_copy.h5" > "$TMP/conv.log" 2>&1 ||
  { cat "$TMP/conv.log"; fail "convert"; }
train cached --set dp.enabled=true --set "data.token_cache=$TMP/cache.h5" --set "model.vae=$TMP/vae_copy.h5"
expect_refused "token cache of another VQ-VAE" "was made with a VQ-VAE whose SHA-256"
train cached_ok --set dp.enabled=true --set "data.token_cache=$TMP/cache.h5"
[ $rc -eq 0 ] || { cat "$log"; fail "token cache of the configured VQ-VAE refused"; }
echo "dp_resume_rules OK"
