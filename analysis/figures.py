#!/usr/bin/python3
"""The paper's figures from run directories, as PNG.

  pflops.png      training PFLOPs per dataset and method, non-private runs (Figures 1 and 3)
  pflops_dp.png   training PFLOPs of DP runs per adaptation and k (the cost of augmult)
  fid_steps.png   FID against training steps, from eval-<step>.h5 files (Figure 2)
  eps_fid.png     FID against epsilon for DP runs at several budgets, a line per adaptation and k

  analysis/figures.py RUNS_ROOT --out DIR
"""
import argparse
import math
import os
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tables  # noqa: E402
import vardp_runs  # noqa: E402


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _datasets(runs):
    order = list(vardp_runs.DATASET_NAMES)
    return sorted({r.dataset for r in runs}, key=lambda d: order.index(d) if d in order else 99)


def pflops(runs, path):
    """Grouped bars: x = dataset, one bar per method, one panel per model. Log scale: the
    datasets' sizes differ by about 75x."""
    runs = [r for r in runs if not r.dp and not math.isnan(r.pflops)]
    models = sorted({r.model for r in runs}) or ["(none)"]
    datasets = _datasets(runs)
    variants = sorted({r.variant for r in runs}, key=tables.variant_key)
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, sharey=True)
    width = 0.8 / max(1, len(variants))
    for ax, model in zip(axes[0], models):
        for j, v in enumerate(variants):
            ys = [tables.mean([r.pflops for r in runs if r.model == model and r.dataset == d and r.variant == v])
                  for d in datasets]
            ax.bar([i + (j - (len(variants) - 1) / 2) * width for i in range(len(datasets))], ys, width, label=v)
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels([vardp_runs.DATASET_NAMES.get(d, d) for d in datasets], rotation=20, ha="right")
        ax.set_title(f"{model}: training cost")
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("training PFLOPs")
    axes[0][-1].legend()
    return _save(fig, path)


def pflops_dp(runs, path):
    runs = [r for r in runs if r.dp and not math.isnan(r.pflops)]
    fig, ax = plt.subplots(figsize=(6, 4))
    for v in sorted({r.variant for r in runs}, key=tables.variant_key):
        ks = sorted({r.augmult for r in runs if r.variant == v})
        ax.plot(ks, [tables.mean([r.pflops for r in runs if r.variant == v and r.augmult == k]) for k in ks],
                "o-", label=v)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))  # 1, 2, 4 not 2^n
    ax.set_yscale("log")
    ax.set_xlabel("augmentation multiplicity k")
    ax.set_ylabel("training PFLOPs")
    ax.set_title("DP training cost against k")
    ax.grid(alpha=0.3)
    if runs:
        ax.legend()
    return _save(fig, path)


def fid_steps(runs, path):
    """One panel per dataset (non-private runs with evaluated checkpoints), a line per
    method and model."""
    runs = [r for r in runs if not r.dp and len(r.evals) > 1]
    datasets = _datasets(runs) or ["(none)"]
    cols = min(3, len(datasets))
    rows = math.ceil(len(datasets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.5 * rows), squeeze=False)
    for ax, d in zip(axes.flat, datasets):
        for r in sorted((r for r in runs if r.dataset == d), key=lambda r: (r.model, tables.variant_key(r.variant))):
            pts = [(e["step"], e["fid"]) for e in r.evals if "fid" in e]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, label=f"{r.variant} {r.model}")
        ax.set_title(vardp_runs.DATASET_NAMES.get(d, d))
        ax.set_xlabel("training step")
        ax.set_ylabel("FID")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    return _save(fig, path)


def eps_fid(runs, path):
    runs = [r for r in runs if r.dp and not math.isnan(r.fid)]
    fig, ax = plt.subplots(figsize=(6, 4))
    cells = tables.group(runs, lambda r: (r.variant, r.augmult, r.dataset, r.model))
    for key in sorted(cells, key=lambda key: (tables.variant_key(key[0]),) + key[1:]):
        by_eps = tables.group(cells[key], lambda r: r.target_epsilon if not math.isnan(r.target_epsilon)
                              else round(r.epsilon_spent, 3))
        if len(by_eps) < 2:  # a single budget (Tables 2, 10, the k sweep) is no curve
            continue
        eps = sorted(by_eps)
        ax.plot(eps, [tables.mean([r.fid for r in by_eps[e]]) for e in eps], "o-",
                label=f"{key[0]}, k = {key[1]}, {vardp_runs.DATASET_NAMES.get(key[2], key[2])}, {key[3]}")
    if not ax.lines:
        ax.text(0.5, 0.5, "no DP runs at two or more ε", ha="center", transform=ax.transAxes)
    ax.set_xscale("log")
    ax.set_xlabel("ε (target; δ = 1/N)")
    ax.set_ylabel("FID")
    ax.set_title("Privacy against sample quality")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return _save(fig, path)


FIGURES = {"pflops.png": pflops, "pflops_dp.png": pflops_dp, "fid_steps.png": fid_steps, "eps_fid.png": eps_fid}


def write_figures(runs, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    return [make(runs, os.path.join(out_dir, name)) for name, make in FIGURES.items()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs_root")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for p in write_figures(vardp_runs.find_runs(args.runs_root), args.out):
        print(p)


if __name__ == "__main__":
    main()
