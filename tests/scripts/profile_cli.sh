#!/usr/bin/env bash
# Training-FLOP profiles (issue 7, acceptance 4): `vardp profile` on a paper config without any
# weight file (VAR-d16 shapes) prints the per-module table and writes a vardp.profile file that
# h5py reads; its planned steps equal `vardp train --dry-run`'s; tiny `vardp train` runs write
# flops.h5 with the paper's count, DP extras and optimizer apart (DP: the planned step, no times,
# the privacy stamp), and a plain run, interrupted and resumed, totals what `vardp profile`
# predicts for the same config.
source "$(dirname "$0")/../support/script_lib.sh"
export OMP_NUM_THREADS=1
SRC="$(cd "$(dirname "$0")/../.." && pwd)"

# 1. A paper config whose weight paths are placeholders: shapes only, N from --dataset-size.
CFG="$SRC/configs/experiments/table2/flowers102_dp-lora_eps10_k1_d16.toml"
start=$(date +%s%N)
"$VARDP_BIN" profile --config "$CFG" --dataset-size 1020 --out "$TMP/profile.h5" > "$TMP/profile.log" 2>&1 \
  || { cat "$TMP/profile.log"; fail "vardp profile failed"; }
echo "vardp profile (VAR-d16 DP-LoRA) took $(( ($(date +%s%N) - start) / 1000000 )) ms"
cat "$TMP/profile.log"
for row in vqvae.encoder word_embed blocks.ada_lin blocks.attn.mat_qkv.lora blocks.attn.scores blocks.attn.values \
           head dp.clip dp.noise "per run"; do
  grep -q "^$row" "$TMP/profile.log" || fail "profile table: no row '$row'"
done
"$PY" - "$TMP/profile.h5" <<'PYEOF' || fail "profile file"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    a = f.attrs
    assert a["format"] == "vardp.profile" and a["format_version"] == 1, dict(a)
    assert a["model"] == "VAR-d16" and a["method"] == "lora" and a["dp_enabled"] == 1, dict(a)
    assert a["dataset_size"] == 1020 and a["examples_per_step"] == round(0.251 * 1020), dict(a)
    assert a["tokens"] == 680
    steps = int(a["steps"])
    run, step = f["run"], f["step"]
    # The run is the planned steps of the expected lot (DP: every step the same size).
    assert np.isclose(run["total_flops"][()], steps * step["total_flops"][()], rtol=1e-12)
    assert np.isclose(f["total_pflops"][()], run["total_flops"][()] / 1e15)
    total = step["tokenize_flops"][()] + step["forward_flops"][()] + step["backward_flops"][()]
    assert np.isclose(step["total_flops"][()], total)
    assert f["dp_extra_pflops"][()] > 0 and step["dp_extra_flops"][()] > 0
    names = [n.decode() if isinstance(n, bytes) else n for n in f["modules"].attrs["names"]]
    fwd = f["modules/forward_flops"][:]
    var_rows = [i for i, n in enumerate(names) if not n.startswith("vqvae.")]
    assert np.isclose(fwd[var_rows].sum(), f["per_view/forward_flops"][()])
    assert np.isclose(f["modules/dp_extra_flops"][:].sum(), step["dp_extra_flops"][()])
    # VAR-d16 with LoRA r=16: about 316 GFLOP forward per view, 215 GFLOP of VQ-VAE encoder.
    print(f"per view: forward {f['per_view/forward_flops'][()]/1e9:.1f} GFLOP, backward "
          f"{f['per_view/backward_flops'][()]/1e9:.1f}, tokenize {f['per_view/tokenize_flops'][()]/1e9:.1f}; "
          f"run {f['total_pflops'][()]:.2f} PFLOP + DP {f['dp_extra_pflops'][()]:.3f} PFLOP over {steps} steps")
    assert 300e9 < f["per_view/forward_flops"][()] < 330e9
    assert 200e9 < f["per_view/tokenize_flops"][()] < 230e9
PYEOF

# 2. Planned steps as the trainer plans them (epochs -> steps), plain and DP.
"$PY" "$TESTS/python/make_train_dataset.py" "$TMP/train.h5" --n 24 --classes 4
TINY=(--config "$TESTS/data/train_tiny.toml" --set "model.vae=$FIX/vae_fixture.pth" --set "model.var=$FIX/var_fixture.pth"
      --set "data.train=$TMP/train.h5")
for extra in "dp.enabled=false" "dp.enabled=true"; do
  sets=(--set train.steps=0 --set train.epochs=3 --set train.batch_size=10 --set "$extra" --set dp.noise_multiplier=1.0)
  "$VARDP_BIN" train "${TINY[@]}" "${sets[@]}" --set "output.dir=$TMP/dry" --dry-run > "$TMP/dry.log" 2>&1 \
    || { cat "$TMP/dry.log"; fail "dry run"; }
  "$VARDP_BIN" profile "${TINY[@]}" "${sets[@]}" > "$TMP/p.log" 2>&1 || { cat "$TMP/p.log"; fail "profile tiny"; }
  want=$(sed -n 's/.*planned_steps=\([0-9]*\).*/\1/p' "$TMP/dry.log")
  grep -q " $want steps" "$TMP/p.log" || { grep steps "$TMP/p.log"; fail "$extra: profile's steps differ from the trainer's $want"; }
  echo "$extra: $want planned steps, as vardp train"
done

# 3. flops.h5 of real training runs: DP LoRA (k = 2) and plain LoRA, interrupted and resumed
# (compared with the profile).
train() {  # name, sets...
  local name=$1; shift
  local sets=()
  for s in "$@"; do sets+=(--set "$s"); done
  mpirun_n 2 "$VARDP_BIN" train "${TINY[@]}" --set "output.dir=$TMP/$name" --set train.steps=4 "${sets[@]}" \
    > "$TMP/$name.log" 2>&1 || { cat "$TMP/$name.log"; fail "$name: vardp train"; }
}
"$VARDP_BIN" profile "${TINY[@]}" --set train.steps=4 --ranks 2 --out "$TMP/tiny_profile.h5" > "$TMP/tiny.log" 2>&1 \
  || { cat "$TMP/tiny.log"; fail "profile of the tiny plain run"; }
train dp dp.enabled=true dp.noise_multiplier=1.0 dp.augmult=2 dp.grad_sample_mode=bk
# A plain run stopped after its first step (wall-time limit: exit 75) and resumed: the per-step
# rows of flops.h5 come back from the file, the total from the checkpoint.
set +e
mpirun_n 2 "$VARDP_BIN" train "${TINY[@]}" --set "output.dir=$TMP/resumed" --set train.steps=4 --max-hours 1e-7 \
  > "$TMP/resumed.log" 2>&1
rc=$?
set -e
[ $rc -eq 75 ] || { cat "$TMP/resumed.log"; fail "resumed: exit $rc, expected 75"; }
train resumed
grep -q "resumed from" "$TMP/resumed.log" || fail "resumed: did not resume"
"$PY" - "$TMP" <<'PYEOF' || fail "flops.h5"
import sys, h5py, numpy as np
tmp = sys.argv[1]
for name in ("dp", "resumed"):
    with h5py.File(f"{tmp}/{name}/flops.h5", "r") as f:
        assert f.attrs["format"] == "vardp.flops", dict(f.attrs)
        total = f["total_flops"][()]
        parts = f["tokenize_flops"][()] + f["forward_flops"][()] + f["backward_flops"][()]
        assert np.isclose(total, parts, rtol=1e-12), (total, parts)
        assert np.isclose(total, f["steps/flops/value"][:].sum(), rtol=1e-12)
        assert list(f["steps/flops/step"][:]) == [1, 2, 3, 4], f["steps/flops/step"][:]
        assert np.isclose(f["total_pflops"][()], total / 1e15)
        executed = total + f["dp_extra_flops"][()] + f["optimizer_flops"][()]
        assert np.isclose(f["executed_flops"][()], executed)
        assert f["optimizer_flops"][()] > 0
        names = list(f["last_step/modules"].attrs["names"])
        assert "blocks.attn.scores" in names and "blocks.attn.mat_qkv.lora" in names, names
        # flops.h5 is releasable (docs/file-formats.md): the privacy stamp; times for plain runs only.
        assert f.attrs["privacy_source"] == "run", dict(f.attrs)
        if name == "dp":
            assert f.attrs["dp_enabled"] == 1 and 0 < f.attrs["epsilon"] < np.inf, dict(f.attrs)
            assert f["privacy"].attrs["total_steps"] == 4 and f["privacy"].attrs["epsilon"] == f.attrs["epsilon"]
            for timed in ("wall_seconds", "achieved_tflops", "phase_seconds"):
                assert timed not in f, f"a DP run's flops.h5 holds {timed}"
            speed = "no times (DP)"
        else:
            assert f.attrs["dp_enabled"] == 0 and f.attrs["epsilon"] == np.inf and "privacy" not in f
            assert f["achieved_tflops"][()] > 0 and f["wall_seconds"][()] > 0
            for phase in ("data", "tokenize", "forward_backward", "optimizer"):
                assert phase in f["phase_seconds"], list(f["phase_seconds"])
            speed = f"{f['achieved_tflops'][()]:.4g} TFLOP/s"
        dp = f["dp_extra_flops"][()]
        print(f"{name}: total {total:.4g} FLOP, DP extra {dp:.4g}, optimizer {f['optimizer_flops'][()]:.4g}, {speed}")
        if name == "resumed":
            assert dp == 0
            # Plain batches are deterministic: the run (both segments) is what vardp profile predicted.
            with h5py.File(f"{tmp}/tiny_profile.h5", "r") as p:
                for key in ("total_flops", "tokenize_flops", "forward_flops", "backward_flops", "optimizer_flops"):
                    assert np.isclose(f[key][()], p["run"][key][()], rtol=1e-12), (key, f[key][()], p["run"][key][()])
        else:
            assert dp > 0 and f["last_step/dp_extra_flops"][()] >= 0
            rows = f["steps/rows/value"][:]
            assert np.all(rows % 2 == 0), rows  # k = 2 views of every lot example
            # The planned step (expected lot round(qN)), the same every step: no realised lot sizes.
            assert len(np.unique(rows)) == 1 and len(np.unique(f["steps/flops/value"][:])) == 1, rows
PYEOF
echo "profile_cli OK"
