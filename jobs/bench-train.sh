#!/usr/bin/env bash
# Training-step benchmark (issue 5): step time and samples/s of `vardp train` for each adaptation
# (full, lora, lntune), plain and DP-SGD, on 1 and 2 MPI ranks, for a small config: a randomly
# initialised VAR of depth $DEPTH on the tiny official VQ-VAE (80x80 images, patch_nums 1..5)
# and a synthetic dataset. Prints a table and writes bench-train.h5 (format vardp.bench.train):
# one row per case with /case (strings), /ranks, /median_step_seconds, /samples_per_second,
# /scaling_efficiency (samples/s on P ranks / (P x samples/s on 1 rank); 1 rank: 1.0).
#
# usage: jobs/bench-train.sh [OUT_DIR]   env: VARDP_BIN, VARDP_SHARED_DIR, DEPTH (4), STEPS (8),
#        MICRO (8), RANKS ("1 2"), K (2: DP views per example)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VARDP_BIN=${VARDP_BIN:-$ROOT/build/vardp}
SHARED=${VARDP_SHARED_DIR:-$ROOT/../shared}
VAE="$SHARED/fixtures/var_official_tiny/vae_fixture.pth"
OUT=${1:-bench-train}
DEPTH=${DEPTH:-4} STEPS=${STEPS:-8} MICRO=${MICRO:-8} RANKS=${RANKS:-"1 2"} K=${K:-2}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT"
[ -f "$VAE" ] || { echo "bench-train: $VAE not found (set VARDP_SHARED_DIR)" >&2; exit 2; }
"$PY" "$ROOT/tests/python/make_train_dataset.py" "$OUT/train.h5" --n 64 --classes 10

for np in $RANKS; do
  export OMP_NUM_THREADS=$(( $(nproc) / np > 0 ? $(nproc) / np : 1 ))
  for method in full lora lntune; do
    for mode in plain dp; do
      name="${method}_${mode}_np${np}"
      rm -rf "${OUT:?}/$name"
      args=(--set "model.vae=$VAE" --set model.depth="$DEPTH" --set 'model.patch_nums=[1,2,3,4,5]'
            --set model.num_classes=10 --set model.drop_path_rate=0.0 --set data.image_size=80
            --set "data.train=$OUT/train.h5" --set "output.dir=$OUT/$name" --set adapt.method="$method"
            --set adapt.lora_rank=8 --set train.steps="$STEPS" --set train.batch_size=16
            --set train.micro_batch="$MICRO" --set train.log_every="$STEPS")
      if [ "$mode" = dp ]; then
        args+=(--set dp.enabled=true --set dp.noise_multiplier=1.0 --set dp.sample_rate=0.25 --set dp.augmult="$K")
      fi
      echo "bench-train: $name" >&2
      mpirun -np "$np" --oversubscribe --bind-to none "$VARDP_BIN" train "${args[@]}" > "$OUT/$name.log" 2>&1 \
        || { tail -20 "$OUT/$name.log" >&2; exit 1; }
    done
  done
done

"$PY" - "$OUT" "$RANKS" <<'PYEOF'
import sys, glob, os, h5py, numpy as np
out, ranks = sys.argv[1], [int(r) for r in sys.argv[2].split()]
rows = []
for method in ("full", "lora", "lntune"):
    for mode in ("plain", "dp"):
        base = None
        for np_ in ranks:
            with h5py.File(f"{out}/{method}_{mode}_np{np_}/metrics.h5", "r") as f:
                t = f["metrics/step_time/value"][1:]          # the first step warms up
                rows_per_step = f["metrics/samples_per_s/value"][1:] * t
                sps = rows_per_step.sum() / t.sum()
                trainable = int(f.attrs["trainable_params"])
            base = sps if np_ == ranks[0] else base
            eff = sps / (np_ / ranks[0] * base)
            rows.append((f"{method}/{mode}", np_, float(np.median(t)), float(sps), float(eff), trainable))
print(f"{'case':<14}{'ranks':>6}{'median step s':>15}{'samples/s':>11}{'scaling':>9}{'trainable':>12}")
for r in rows:
    print(f"{r[0]:<14}{r[1]:>6}{r[2]:>15.3f}{r[3]:>11.1f}{r[4]:>9.2f}{r[5]:>12,}")
with h5py.File(f"{out}/bench-train.h5", "w") as f:
    f.attrs["format"] = "vardp.bench.train"
    f.attrs["format_version"] = 1
    f["case"] = np.array([r[0] for r in rows], dtype=h5py.string_dtype())
    f["ranks"] = np.array([r[1] for r in rows], dtype=np.int64)
    f["median_step_seconds"] = np.array([r[2] for r in rows])
    f["samples_per_second"] = np.array([r[3] for r in rows])
    f["scaling_efficiency"] = np.array([r[4] for r in rows])
    f["trainable_params"] = np.array([r[5] for r in rows], dtype=np.int64)
print(f"wrote {out}/bench-train.h5")
PYEOF
