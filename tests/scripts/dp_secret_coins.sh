#!/usr/bin/env bash
# Secret coins (privacy issue, acceptance 1), black-box through `vardp train` and its files only:
#  * two DP runs with the identical public config differ (each draws its own run secret);
#  * neighbouring datasets D (16 images) and D' = D + 1 image, one SGD step, q = 1, sigma = 1:
#    r = N'(t0 - t_D')/lr - N(t0 - t_D)/lr carries both runs' independent noise, |r| >> C;
#  * with a pinned dp.secret_file two runs are bit-identical again, and for D / D' the residual
#    is then the added example's clipped gradient, |r| <= C: the attack that the secret stops;
#  * secret.key: 64 hex digits, mode 0600, one per run, never in config.toml or the log.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/d.h5" --n 16 --classes 4
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/d1.h5" --n 17 --classes 4  # the same 16 first images
"$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$TMP/pinned.key"
chmod 600 "$TMP/pinned.key"

train() {  # name dataset [--set ...]
  local name=$1 data=$2
  shift 2
  "$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" \
    --set "model.var=$FIX/var_fixture.pth" --set "data.train=$TMP/$data.h5" --set "output.dir=$TMP/$name" \
    --set train.steps=1 --set dp.enabled=true --set dp.noise_multiplier=1.0 --set dp.sample_rate=1.0 \
    --set dp.max_grad_norm=1.0 --set train.optimizer=sgd --set train.momentum=0.0 --set train.weight_decay=0.0 \
    --set train.lr=1.0 --set output.checkpoint_every=0 --set train.log_every=1 "$@" > "$TMP/$name.log" 2>&1 ||
    { cat "$TMP/$name.log"; fail "train $name"; }
}
train init d --set train.lr=0.0                  # t0: SGD with lr 0 leaves the initial tensors
train a d
train b d
train a1 d1
train p d --set "dp.secret_file=$TMP/pinned.key"
train q d --set "dp.secret_file=$TMP/pinned.key"
train p1 d1 --set "dp.secret_file=$TMP/pinned.key"

for run in a b a1; do
  [ -f "$TMP/$run/secret.key" ] || fail "$run: no secret.key"
  [ "$(stat -c %a "$TMP/$run/secret.key")" = 600 ] || fail "$run: secret.key mode $(stat -c %a "$TMP/$run/secret.key")"
  grep -Eqx '[0-9a-f]{64}' "$TMP/$run/secret.key" || fail "$run: secret.key is not 64 hex digits"
  hex=$(cat "$TMP/$run/secret.key")
  ! grep -q "$hex" "$TMP/$run/config.toml" "$TMP/$run.log" || fail "$run: the secret is in config.toml or the log"
  grep -q "DP coins: run secret drawn from the OS" "$TMP/$run.log" || fail "$run: no log line on the secret's source"
done
[ "$(cat "$TMP/a/secret.key")" != "$(cat "$TMP/b/secret.key")" ] || fail "two runs drew the same secret"
[ ! -e "$TMP/p/secret.key" ] || fail "a pinned run wrote secret.key (the key is the supplied file)"
grep -q "pinned by dp.secret_file" "$TMP/p.log" || fail "p: no log line on the pinned secret"

"$PY" - "$TMP" <<'PYEOF'
import sys, h5py, numpy as np
tmp = sys.argv[1]
C, lr = 1.0, 1.0
def load(name):
    with h5py.File(f"{tmp}/{name}/checkpoint-00000001.h5", "r") as f:
        g = f["trainable"]
        t = np.concatenate([g[k][...].astype(np.float64).ravel() for k in g.attrs["keys"]])
        return t, f.attrs["secret_source"], f.attrs["secret_fingerprint"], f.attrs["sample_rate"]
t0, *_ = load("init")
def residual(d, d1, n=16, n1=17):
    td, _, _, q = load(d)
    td1, _, _, q1 = load(d1)
    assert q == 1.0 and q1 == 1.0, (q, q1)
    return np.linalg.norm(n1 * (t0 - td1) / lr - n * (t0 - td) / lr)
ta, src_a, fp_a, _ = load("a")
tb, _, fp_b, _ = load("b")
tp, src_p, fp_p, _ = load("p")
tq, _, _, _ = load("q")
assert src_a == "generated" and src_p == "supplied", (src_a, src_p)
assert fp_a != fp_b, "two runs report the same secret fingerprint"
assert not np.array_equal(ta, tb), "two DP runs with the identical public config gave identical tensors"
assert np.array_equal(tp, tq), "two runs with the same pinned secret differ"
P = ta.size
r_secret = residual("a", "a1")
r_known = residual("p", "p1")
print(f"P = {P} trainable coordinates; |r| with secret coins = {r_secret:.2f} C "
      f"(independent noise: ~sqrt(2P) = {np.sqrt(2 * P):.1f}); |r| with one pinned secret = {r_known:.6f} C")
# Independent noise: |r|^2 ~ 2 P sigma^2 C^2 (chi-square); far above C for any P >= 2.
assert r_secret > 10 * C and r_secret > 0.5 * np.sqrt(2 * P) * C, r_secret
# Known coins cancel: what is left is one clipped gradient (<= C, up to float32 rounding of t).
assert 0 < r_known <= C * (1 + 1e-3), r_known
# Private diagnostics are marked one by one (invariant 5); the public plan's series are not.
with h5py.File(f"{tmp}/a/metrics.h5", "r") as f:
    m = f["metrics"]
    for name in ("loss", "grad_norm", "lot_size", "step_time", "clip_fraction"):
        assert m[name].attrs.get("non_private") == 1, f"metrics.h5 {name} is not marked non-private"
    for name in ("lr", "epsilon"):
        assert "non_private" not in m[name].attrs, f"metrics.h5 {name} is marked non-private"
PYEOF
echo "dp_secret_coins OK"
