#!/usr/bin/env bash
# The same seed and run secret give the same trained tensors on 1, 2 and 3 ranks, with any
# micro-batch split and with view groups of 1 and 2 ranks (issue 5, acceptance 2; ARCHITECTURE
# invariant 6), for a DP-LoRA run with k = 2 views and a plain full fine-tuning run.
#
# Plain SGD (momentum 0, no weight decay, constant lr), not AdamW: AdamW divides each update by
# its own running RMS, so a constant rank-dependent scale of the update (a sum divided by the
# number of ranks, noise added on every rank, a mean over the realised instead of the expected
# lot...) would cancel out and the runs would still agree. With SGD the trained tensors are
# theta_0 - lr * sum of the updates, so such a scale changes the CHANGE theta - theta_0 by the
# same factor. The comparison is therefore on the change: runs with lr = 0 give theta_0.
#
# DP coins (Poisson lots, noise) are keyed by the run secret, not by train.seed: every DP run
# here reads the same dp.secret_file, so 1-rank and 2-rank runs draw the same lots and noise.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/train.h5" --n 16 --classes 4
"$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$TMP/secret.key"
"$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$TMP/other.key"

train() {  # ranks, name, extra sets...
  local np=$1 name=$2; shift 2
  local sets=(--set "model.vae=$FIX/vae_fixture.pth" --set "model.var=$FIX/var_fixture.pth"
              --set "data.train=$TMP/train.h5" --set "output.dir=$TMP/$name" --set train.steps=3
              --set train.optimizer=sgd --set train.momentum=0.0 --set train.weight_decay=0.0
              --set train.schedule=constant --set train.warmup_steps=0)
  for s in "$@"; do sets+=(--set "$s"); done
  mpirun_n "$np" "$VARDP_BIN" train --config "$TESTS/data/train_tiny.toml" "${sets[@]}" > "$TMP/$name.log" 2>&1 \
    || { cat "$TMP/$name.log"; fail "$name failed"; }
}

# sigma = 0.1: the noise sum (sigma C sqrt(P) ~ 16 over the ~24000 LoRA coordinates) and the
# clipped sum (<= C per example, ~8 examples a lot) are of one size, so a scale error in either
# shows (with sigma = 0.8 the noise would be ~15x the clipped sum and dilute an error in it).
DP=(dp.enabled=true dp.noise_multiplier=0.1 dp.sample_rate=0.5 dp.augmult=2 adapt.method=lora
    "dp.secret_file=$TMP/secret.key" train.lr=0.05)
train 1 dp0 "${DP[@]}" train.micro_batch=3 train.lr=0.0   # theta_0 of the DP runs
train 1 dp1 "${DP[@]}" train.micro_batch=3
train 1 dp1again "${DP[@]}" train.micro_batch=3
train 2 dp2 "${DP[@]}" train.micro_batch=2
train 3 dp3 "${DP[@]}" train.micro_batch=5
train 2 dp2g2 "${DP[@]}" dist.view_group=2 train.micro_batch=4
train 1 dp1other "${DP[@]}" train.micro_batch=3 "dp.secret_file=$TMP/other.key"
# Negative control: with SGD, lr x 1.5 is exactly an update scaled by 1.5 (what a rank-dependent
# scale error would do); the comparison below must reject it.
train 2 dp2scaled "${DP[@]}" train.micro_batch=2 train.lr=0.075
PLAIN=(adapt.method=full train.lr=0.05)
train 1 plain0 "${PLAIN[@]}" train.micro_batch=8 train.lr=0.0
train 1 plain1 "${PLAIN[@]}" train.micro_batch=8
train 2 plain2 "${PLAIN[@]}" train.micro_batch=3
train 3 plain3 "${PLAIN[@]}" train.micro_batch=1

"$PY" - "$TMP" <<'PYEOF'
import sys, h5py, numpy as np
tmp = sys.argv[1]
def tensors(name):
    run = f"{tmp}/{name}"
    latest = open(run + "/latest").read().strip()
    with h5py.File(f"{run}/{latest}", "r") as f:
        assert f.attrs["step"] == 3, (name, f.attrs["step"])
        g = f["trainable"]
        return {k: g[k][...].astype(np.float64) for k in g.attrs["keys"]}
def norm(d):
    return sum(float((v ** 2).sum()) for v in d.values()) ** 0.5
def diff(a, b):
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    return {k: a[k] - b[k] for k in a}

# Tolerance 1e-4 on |theta_a - theta_b| / |theta_a - theta_0|. Float32 rounding: the runs sum the
# same per-example gradients in another order (ranks, micro-batches), ~1e-6 relative in an update,
# and each trained value is rounded to float32 (6e-8 relative to theta, |theta - theta_0| /
# |theta| >= 1e-3 is checked below, so <= 6e-5 relative to the change). A rank-dependent scale c
# of the update shows as |c - 1| (0.5 for 2 vs 3 ranks, 1 for a factor 2): 3 orders of magnitude
# above the tolerance.
TOL = 1e-4
def compare(ref, zero, other):
    a, b, a0 = tensors(ref), tensors(other), tensors(zero)
    change = norm(diff(a, a0))
    rel = norm(diff(a, b)) / change
    print(f"{other} vs {ref}: |difference| / |change| = {rel:.2e} (change / |theta| = {change / norm(a):.2e})")
    assert rel < TOL, (other, rel)
    return change / norm(a)

for zero, ref, others in (("dp0", "dp1", ("dp2", "dp3", "dp2g2")), ("plain0", "plain1", ("plain2", "plain3"))):
    a, a0 = tensors(ref), tensors(zero)
    # The runs moved: otherwise the comparison proves nothing (and the LoRA B factors start at 0).
    moved = norm(diff(a, a0)) / norm(a)
    print(f"{ref}: |theta - theta_0| / |theta| = {moved:.2e}")
    assert moved > 1e-3, (ref, moved)
    if zero == "dp0":
        assert any(np.abs(v).max() > 0 for k, v in a.items() if "lora_B" in k)
        assert all(np.abs(v).max() == 0 for k, v in a0.items() if "lora_B" in k)
    for other in others:
        compare(ref, zero, other)

a, s, a0 = tensors("dp1"), tensors("dp2scaled"), tensors("dp0")
rel = norm(diff(a, s)) / norm(diff(a, a0))
print(f"dp2scaled vs dp1 (update x 1.5): |difference| / |change| = {rel:.2e}")
assert rel > 0.25, rel  # ~0.5, far above TOL

# The DP coins come from the secret file: the same key gives bit-identical tensors, another key
# other lots and noise (a different model, although train.seed is the same).
a, b, c, a0 = tensors("dp1"), tensors("dp1again"), tensors("dp1other"), tensors("dp0")
assert all(np.array_equal(a[k], b[k]) for k in a), "same secret_file, different tensors"
rel = norm(diff(a, c)) / norm(diff(a, a0))
print(f"dp1other vs dp1 (another secret): |difference| / |change| = {rel:.2e}")
assert rel > 0.1, rel
PYEOF
# A run with a pinned secret writes no secret.key of its own (the key lives where the user put it).
for r in dp1 dp2 dp3; do
  [ ! -e "$TMP/$r/secret.key" ] || fail "$r: wrote secret.key although dp.secret_file was set"
done
echo "train_invariance OK"
