#!/usr/bin/env bash
# vardp train-vqvae (issue 8): the reconstruction error falls; the output is a VQ-VAE state dict
# that the rest of vardp loads (tokenize); a run stopped after a step (as by a signal) and resumed
# gives bit for bit the model of an uninterrupted run; SIGUSR1 saves the state and exits 75.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/train.h5" --n 64 --classes 4 --resolution 36 --image-size 32
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/test.h5" --n 16 --classes 4 --resolution 36 --image-size 32 \
  --split test --seed 1
VQ=(train-vqvae --train "$TMP/train.h5" --patch-nums 1,2,4,8 --vocab 64 --cvae 8 --ch 32 --ch-mult 1,2,2 --no-attn
  --batch 4 --lr 2e-3 --warmup 2 --reset-dead-every 10 --seed 3 --device cpu)

"$VARDP_BIN" "${VQ[@]}" --steps 40 --log-every 1 --test "$TMP/test.h5" --out "$TMP/full.h5" > "$TMP/full.log" 2>&1 \
  || { cat "$TMP/full.log"; fail "train-vqvae"; }
first=$(grep -o 'rec_mse [0-9.]*' "$TMP/full.log" | head -1 | cut -d' ' -f2)
last=$(grep -o 'rec_mse [0-9.]*' "$TMP/full.log" | tail -1 | cut -d' ' -f2)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.6 * a) }' || { cat "$TMP/full.log"; fail "rec_mse $first -> $last"; }
grep -q "test reconstruction .*images=16 mse=" "$TMP/full.log" || fail "no test reconstruction line"
[ ! -e "$TMP/full.h5.resume.h5" ] || fail "resume file left behind"
"$VARDP_BIN" tokenize --vae "$TMP/full.h5" --data "$TMP/test.h5" --views 1 --patch-nums 1,2,4,8 --device cpu \
  --out "$TMP/tokens.h5" > "$TMP/tok.log" 2>&1 || { cat "$TMP/tok.log"; fail "tokenize with the trained VQ-VAE"; }

# Stop after step 9 (exit 75, state saved), rerun the same command: it resumes and finishes.
rc=0
"$VARDP_BIN" "${VQ[@]}" --steps 16 --log-every 4 --stop-after-step 9 --out "$TMP/sliced.h5" > "$TMP/s1.log" 2>&1 || rc=$?
[ "$rc" -eq 75 ] || { cat "$TMP/s1.log"; fail "stop-after-step exited $rc, not 75"; }
[ -f "$TMP/sliced.h5.resume.h5" ] && [ ! -e "$TMP/sliced.h5" ] || fail "no resume file / output written early"
"$VARDP_BIN" "${VQ[@]}" --steps 16 --log-every 4 --stop-after-step 9 --out "$TMP/sliced.h5" > "$TMP/s2.log" 2>&1 \
  || { cat "$TMP/s2.log"; fail "resumed run"; }
grep -q "resumed from .* at step 9" "$TMP/s2.log" || fail "second run did not resume at step 13"
"$VARDP_BIN" "${VQ[@]}" --steps 16 --log-every 4 --out "$TMP/whole.h5" > "$TMP/w.log" 2>&1 || { cat "$TMP/w.log"; fail "whole run"; }

# SIGUSR1 (Slurm's --signal): state saved at the next step boundary, exit 75.
"$VARDP_BIN" "${VQ[@]}" --steps 100000 --log-every 1 --out "$TMP/sig.h5" > "$TMP/sig.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q "step 2/" "$TMP/sig.log" && break; sleep 0.1; done
kill -USR1 "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 75 ] && [ -f "$TMP/sig.h5.resume.h5" ] || { cat "$TMP/sig.log"; fail "SIGUSR1: exit $rc"; }

"$PY" - "$TMP" <<'PYEOF'
import sys, h5py, numpy as np
tmp = sys.argv[1]
with h5py.File(f"{tmp}/sliced.h5", "r") as a, h5py.File(f"{tmp}/whole.h5", "r") as b:
    assert a.attrs["format"] == "vardp.state_dict", a.attrs["format"]
    ka, kb = sorted(a["tensors"].keys()), sorted(b["tensors"].keys())
    assert ka == kb and "quantize.embedding.weight" in ka
    for k in ka:
        assert np.array_equal(a["tensors"][k][...], b["tensors"][k][...]), f"{k} differs after resume"
with h5py.File(f"{tmp}/tokens.h5", "r") as t:
    tok = t["tokens"][...]
    assert tok.shape == (16, 1 + 4 + 16 + 64) and tok.max() < 64
    assert len(np.unique(tok)) > 8, "codebook collapsed"
print("train-vqvae ok")
PYEOF
