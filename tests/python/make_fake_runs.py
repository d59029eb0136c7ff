#!/usr/bin/python3
"""Synthetic run directories laid out exactly as docs/formats/run.md says (and as vardp's HDF5
writer stores them: extendible chunked /metrics/<name>/{step,value}, variable-length string and
int64 attributes), for testing analysis/. The numbers are made up but ordered plausibly.

  make_fake_runs.py OUT      -> OUT/table1/..., OUT/table2/..., OUT/table10/..., OUT/sweeps/...

Special cases: OUT/table1/flowers102_lora_d16 holds steps 21..30 twice, as an appending writer
would leave them after a resume (vardp rewrites the file, but readers must cope), the second
time with loss + 100 so that a reader keeping the first entry is caught; OUT/unfinished has no
DONE, flops.h5 or eval.
"""
import math
import os
import sys

import h5py
import numpy as np

N = {"food101": 75750, "cub200": 5994, "flowers102": 1020, "stanford_cars": 8144, "oxford_pets": 3680}
CLASSES = {"food101": 101, "cub200": 200, "flowers102": 102, "stanford_cars": 196, "oxford_pets": 37}
TOTAL = {16: 310_283_520, 20: 600_917_136}
STR = h5py.string_dtype()


def trainable(depth, method, targets, classes):
    c = 64 * depth
    per_block = {"attn": 16 * (4 * c + 2 * c), "mlp": 16 * (5 * c + 5 * c), "adaln": 16 * 7 * c}
    emb = classes * c
    if method == "full":
        return TOTAL[depth]
    if method == "lntune":
        return depth * (6 * c * c + 6 * c) + emb
    return depth * sum(per_block[t] for t in targets) + emb


def provenance(f, fmt, config):
    f.attrs["format"] = fmt
    f.attrs["format_version"] = np.int64(1)
    f.attrs["vardp_version"] = "0.1.0"
    f.attrs["git_sha"] = "fixture"
    f.attrs["created_utc"] = "2026-11-27T12:00:00Z"
    f.attrs["config_toml"] = config
    f.attrs["world_size"] = np.int64(4)


def append(f, group, name, step, value):
    """What io::TimeSeriesWriter does: one entry onto extendible 1-d datasets."""
    base = f"{group}/{name}"
    if base not in f:
        f.create_dataset(f"{base}/step", shape=(0,), maxshape=(None,), chunks=(1024,), dtype="i8")
        f.create_dataset(f"{base}/value", shape=(0,), maxshape=(None,), chunks=(1024,), dtype="f8")
    for ds, v in ((f[f"{base}/step"], step), (f[f"{base}/value"], value)):
        ds.resize((ds.shape[0] + 1,))
        ds[-1] = v


def write_eval(path, fid, step):
    with h5py.File(path, "w") as f:
        provenance(f, "vardp.metrics.eval", "")
        f["fid"] = float(fid)
        f["sfid"] = float(fid) * 1.3
        f["pr/k"] = np.array([3], dtype=np.int64)
        f["pr/precision"] = np.array([max(0.05, 0.9 - fid / 200)])
        f["pr/recall"] = np.array([max(0.01, 0.6 - fid / 300)])
        f["pr/density"] = np.array([0.8])
        f["pr/coverage"] = np.array([0.7])
        f.attrs["step"] = np.int64(step)
        f.attrs["checkpoint"] = f"checkpoint-{step:08d}.h5"


def make_run(out, rel, *, dataset, depth, method, targets=("attn", "mlp", "adaln"), dp=False, eps=None,
             k=1, fid, steps, resumed=False, finished=True):
    run = os.path.join(out, rel)
    os.makedirs(run, exist_ok=True)
    config = f'[model]\ndepth = {depth}\n\n[adapt]\nmethod = "{method}"\n\n[output]\ndir = "{rel}"\n'
    with open(os.path.join(run, "config.toml"), "w") as f:
        f.write(config)
    n, q = N[dataset], 0.251
    sigma = 0.5 + 5.0 / math.sqrt(eps) if dp else 0.0
    with h5py.File(os.path.join(run, "metrics.h5"), "w") as f:
        provenance(f, "vardp.metrics", config)
        a = f.attrs
        a["method"] = method
        a.create("lora_targets", list(targets), dtype=STR)
        a["model"] = f"VAR-d{depth}"
        a["model_depth"] = np.int64(depth)
        a["dataset"] = dataset
        a["dataset_size"] = np.int64(n)
        a["num_classes"] = np.int64(CLASSES[dataset])
        a["trainable_params"] = np.int64(trainable(depth, method, targets, CLASSES[dataset]))
        a["total_params"] = np.int64(TOTAL[depth])
        a["total_steps"] = np.int64(steps)
        a["batch_size"] = np.int64(256)
        a["dp_enabled"] = np.int64(dp)
        a["augmult"] = np.int64(k)
        if dp:
            a["noise_multiplier"], a["sample_rate"], a["delta"], a["max_grad_norm"] = sigma, q, 1.0 / n, 0.5
            a["target_epsilon"] = float(eps)
            a["accountant"] = "rdp"
            a["diagnostics_not_private"] = np.int64(1)
        logged = list(range(10, (steps if finished else steps // 2) + 1, 10))
        if resumed:  # killed after step 30, resumed from the checkpoint at step 20
            logged = [s for s in logged if s <= 30] + [s for s in logged if s > 20]
        seen = set()
        for s in logged:
            loss = 6.0 - 2.0 * s / steps + (100.0 if s in seen else 0.0)
            seen.add(s)
            append(f, "metrics", "loss", s, loss)
            append(f, "metrics", "grad_norm", s, 1.0 / (1 + s / steps))
            append(f, "metrics", "lot_size", s, 256 + (s % 7) - 3 if dp else 256)
            append(f, "metrics", "lr", s, 5e-4)
            append(f, "metrics", "samples_per_s", s, 256 * k / (0.5 * depth / 16 * k))
            if dp:
                append(f, "metrics", "clip_fraction", s, 0.9)
                append(f, "metrics", "epsilon", s, eps * math.sqrt(s / steps))
        # step_time has one entry per step (the trainer logs it every step); the readers' wall
        # time is its sum, since a DP run's flops.h5 (releasable) holds no times.
        timed = list(range(1, (steps if finished else steps // 2) + 1))
        if resumed:
            timed = [s for s in timed if s <= 30] + [s for s in timed if s > 20]
        # Written at once (one resize per step would make the fake runs slow to write).
        f["metrics/step_time/step"] = np.array(timed, dtype=np.int64)
        f["metrics/step_time/value"] = np.full(len(timed), 0.5 * depth / 16 * k)
    if not finished:
        return run
    per_example = (3.0 if method == "full" else 2.0) * 2 * 310e6 * 680 * (depth / 16) ** 2
    total = per_example * 256 * k * steps
    with h5py.File(os.path.join(run, "flops.h5"), "w") as f:
        provenance(f, "vardp.flops", config)
        f.attrs["flop_counter"] = "analytic"
        f["total_flops"] = total
        f["total_pflops"] = total / 1e15
        for s in range(1, steps + 1, max(1, steps // 20)):
            append(f, "steps", "flops", s, total / steps)
        f.attrs["dp_enabled"] = np.int64(dp)
        if not dp:  # times only for non-private runs (docs/formats/run.md)
            for phase, share in (("data", 0.05), ("forward", 0.3), ("backward", 0.55), ("optimizer", 0.1)):
                f[f"phase_seconds/{phase}"] = share * steps * 0.5 * k
            f["wall_seconds"] = steps * 0.5 * k
    for s, factor in ((steps // 4, 1.6), (steps // 2, 1.35), (3 * steps // 4, 1.15)):
        write_eval(os.path.join(run, f"eval-{s:08d}.h5"), fid * factor, s)
    write_eval(os.path.join(run, "eval.h5"), fid, steps)
    last = f"checkpoint-{steps:08d}.h5"
    open(os.path.join(run, last), "w").close()  # stands in for a checkpoint; analysis never reads it
    with open(os.path.join(run, "latest"), "w") as f:
        f.write(last + "\n")
    with open(os.path.join(run, "DONE"), "w") as f:
        f.write(f"steps {steps}\n")
    return run


def main(out):
    base = {"food101": 12.0, "cub200": 9.0, "flowers102": 15.0, "stanford_cars": 8.0, "oxford_pets": 18.0}
    offset = {"full": 0.0, "lora": 2.0, "lntune": 5.0}
    for d in N:
        for m in ("full", "lora", "lntune"):
            for depth in (16, 20):
                steps = 50 * -(-N[d] // 256)
                make_run(out, f"table1/{d}_{m}_d{depth}", dataset=d, depth=depth, method=m,
                         fid=base[d] + offset[m] - (1.0 if depth == 20 else 0.0), steps=steps,
                         resumed=(d, m, depth) == ("flowers102", "lora", 16))
    for m, ep in (("lora", 80), ("lntune", 100)):
        for k in (1, 128):
            make_run(out, f"table2/flowers102_dp-{m}_eps10_k{k}_d16", dataset="flowers102", depth=16, method=m,
                     dp=True, eps=10.0, k=k, fid=(120 if m == "lora" else 140) - 0.2 * k, steps=int(ep / 0.251))
    for i, eps in enumerate((1.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0)):
        make_run(out, f"sweeps/eps_dp-lora_k32_d16/{i:04d}-target_epsilon={eps}", dataset="flowers102", depth=16,
                 method="lora", dp=True, eps=eps, k=32, fid=60 + 120 / math.sqrt(eps), steps=int(80 / 0.251))
    for i, k in enumerate((1, 2, 4, 8, 16, 32, 64, 128)):
        make_run(out, f"sweeps/k_dp-lora_eps10_d16/{i:04d}-augmult={k}", dataset="flowers102", depth=16,
                 method="lora", dp=True, eps=10.0, k=k, fid=125 - 6 * math.log2(k), steps=int(80 / 0.251))
    for name, method, targets in (("lora-a", "lora", ("attn",)), ("lora-m", "lora", ("mlp",)),
                                  ("lora-am-ln", "lora", ("attn", "mlp", "adaln")), ("lntune", "lntune", ())):
        make_run(out, f"table10/flowers102_dp-{name}_eps10_k128_d16", dataset="flowers102", depth=16, method=method,
                 targets=targets, dp=True, eps=10.0, k=128, fid=100 + 5 * len(name), steps=int(80 / 0.251))
    make_run(out, "unfinished", dataset="cub200", depth=16, method="lora", fid=0, steps=1000, finished=False)


if __name__ == "__main__":
    main(sys.argv[1])
