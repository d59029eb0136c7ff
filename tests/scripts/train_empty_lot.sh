#!/usr/bin/env bash
# DP steps with empty Poisson lots (ARCHITECTURE invariants 2, 3, 4): a tiny data set (N = 4) and
# q = 0.1 make about two steps in three empty (0.9^4). An empty lot is a valid step: it must be
# accounted like any other (ledger total_steps == steps taken, in every checkpoint), its noise
# must still be added on rank 0 and divided by the EXPECTED lot size q*N (so the trained tensors
# move by lr * N(0, (sigma C / qN)^2) per coordinate), and the run must finish with exit 0 on 2
# ranks (no rank has a micro-batch). Plain SGD with momentum 0: the change of a step is
# -lr * update, nothing else (AdamW's momentum would move the tensors even without noise).
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/train.h5" --n 4 --classes 4

STEPS=12
# 12 steps: the chance that none of steps 2..12 has an empty lot is (1 - 0.9^4)^11 < 1e-5 (the
# secret, hence the lots, is fresh in every run: no dp.secret_file, the run draws its own).
mpirun_n 2 "$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" \
  --set "model.vae=$FIX/vae_fixture.pth" --set "model.var=$FIX/var_fixture.pth" \
  --set "data.train=$TMP/train.h5" --set "output.dir=$TMP/run" \
  --set dp.enabled=true --set dp.sample_rate=0.1 --set dp.noise_multiplier=1.0 --set dp.max_grad_norm=1.0 \
  --set dp.target_delta=1e-3 --set dp.augmult=2 --set adapt.method=lora \
  --set train.optimizer=sgd --set train.momentum=0.0 --set train.weight_decay=0.0 --set train.lr=1e-3 \
  --set train.steps=$STEPS --set train.log_every=1 --set output.checkpoint_every=1 --set output.keep_last=100 \
  > "$TMP/run.log" 2>&1 || { cat "$TMP/run.log"; fail "vardp train with empty lots failed"; }
[ -e "$TMP/run/DONE" ] || { cat "$TMP/run.log"; fail "no DONE"; }

"$PY" - "$TMP/run" "$STEPS" <<'PYEOF' || { cat "$TMP/run.log"; fail "empty-lot checks"; }
import sys, h5py, numpy as np
run, steps = sys.argv[1], int(sys.argv[2])
q, sigma, C, lr, N = 0.1, 1.0, 1.0, 1e-3, 4

def checkpoint(s):
    with h5py.File(f"{run}/checkpoint-{s:08d}.h5", "r") as f:
        assert f.attrs["step"] == s, (s, f.attrs["step"])
        # Invariant 4: every step so far is in the ledger, empty lots included.
        assert "privacy" in f, f"checkpoint {s} has no /privacy ledger"
        p = f["privacy"]
        assert p.attrs["total_steps"] == s, (s, p.attrs["total_steps"])
        assert int(p["steps"][...].sum()) == s, (s, p["steps"][...])
        assert np.allclose(p["sample_rate"][...], q) and np.allclose(p["noise_multiplier"][...], sigma)
        g = f["trainable"]
        return {k: g[k][...].astype(np.float64) for k in g.attrs["keys"]}

with h5py.File(run + "/metrics.h5", "r") as f:
    lot = f["metrics/lot_size/value"][...]
    lot_steps = f["metrics/lot_size/step"][...]
    assert list(lot_steps) == list(range(1, steps + 1)), lot_steps
    assert f["privacy"].attrs["total_steps"] == steps
print("realised lot sizes (non-private diagnostic):", lot.astype(int).tolist())
assert np.all((lot >= 0) & (lot <= N)), lot
empty = [s for s in range(2, steps + 1) if lot[s - 1] == 0]
assert empty, f"no empty lot among steps 2..{steps}: {lot}"
latest = open(run + "/latest").read().strip()
assert latest == f"checkpoint-{steps:08d}.h5", latest

# On an empty-lot step the update is the noise alone divided by q*N: every coordinate of the
# change is N(0, (lr sigma C / qN)^2). Over the ~24000 LoRA coordinates the sample std has a
# relative error of 1/sqrt(2P) ~ 0.5 %; 5 % (10 of those) separates it from a missing noise (0),
# a doubled one (+41 %), a division by the realised lot size (inf) or by max(1, lot) (-60 %).
want = lr * sigma * C / (q * N)
for s in empty:
    a, b = checkpoint(s - 1), checkpoint(s)
    d = np.concatenate([(b[k] - a[k]).ravel() for k in a])
    assert np.all(np.isfinite(d)), s
    sd = d.std()
    print(f"step {s} (empty lot): {d.size} coordinates, change std {sd:.4g}, expected {want:.4g}")
    assert d.size > 5000 and abs(sd / want - 1) < 0.05, (s, d.size, sd, want)
# Non-empty steps move the tensors too, and every checkpoint carries its ledger.
for s in range(2, steps + 1):
    a, b = checkpoint(s - 1), checkpoint(s)
    assert any(not np.array_equal(a[k], b[k]) for k in a), f"step {s} left the tensors unchanged"
PYEOF
# The run's own secret (no dp.secret_file): private run state, owner-only.
[ -f "$TMP/run/secret.key" ] || fail "no secret.key in the run directory"
[ "$(stat -c %a "$TMP/run/secret.key")" = 600 ] || fail "secret.key mode $(stat -c %a "$TMP/run/secret.key"), want 600"
grep -qE '^[0-9a-fA-F]{64}$' "$TMP/run/secret.key" || fail "secret.key is not 64 hex digits"
echo "train_empty_lot OK"
