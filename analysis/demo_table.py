#!/usr/bin/env python3
"""The embedded demo's summary table (docs/demo.md): one row per run directory under DEMO_DIR
(vardp train + sample --run + eval --run) plus the un-adapted base model (DEMO_DIR/base/eval.h5):
method, epsilon, FID, class accuracy of the samples, trainable parameters, training PFLOPs and
wall time. Prints Markdown and writes DEMO_DIR/table.md and DEMO_DIR/table.csv.

    /usr/bin/python3 analysis/demo_table.py runs/demo
"""
import csv
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vardp_runs  # noqa: E402

COLUMNS = ["method", "epsilon", "FID", "accuracy", "trainable params", "PFLOPs", "wall time (s)"]


def fmt(v, spec):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def run_row(run):
    label = ("DP-" if run.dp else "") + run.variant
    if run.dp:
        label += f" (k={run.augmult})"
    eps = run.epsilon_spent if run.dp else math.inf
    return [label, "∞" if math.isinf(eps) else fmt(eps, ".2f"), fmt(run.fid, ".2f"),
            fmt(run.metric("class_accuracy"), ".3f"), f"{run.trainable_params:,}", fmt(run.pflops, ".4f"),
            fmt(run.wall_seconds, ".0f")]


def base_row(path):
    e = vardp_runs.read_eval(path)
    return ["base (not adapted)", "–", fmt(e.get("fid"), ".2f"), fmt(e.get("class_accuracy"), ".3f"), "0", "0",
            "–"]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: demo_table.py DEMO_DIR")
    root = sys.argv[1]
    rows = []
    base = os.path.join(root, "base", "eval.h5")
    if os.path.exists(base):
        rows.append(base_row(base))
    for run in vardp_runs.find_runs(root):
        rows.append(run_row(run))
    if not rows:
        sys.exit(f"no evaluated runs under {root}")
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(os.path.join(root, "table.md"), "w") as f:
        f.write(text)
    with open(os.path.join(root, "table.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)


if __name__ == "__main__":
    main()
