#!/usr/bin/python3
"""The paper's tables from run directories, as Markdown and CSV.

Runs are matched to a table by what their metrics.h5 says (method, LoRA targets, DP, epsilon,
k, dataset, model), not by directory names, so sweeps and single runs mix freely. Where
several runs fill one cell (e.g. Table 2's LoRA k=128 is also Table 10's LoRA-AM+LN), the
cell shows their mean and the `runs` column their count.

  analysis/tables.py RUNS_ROOT --out DIR   ->  DIR/table{1,2,3,9,10}.{md,csv}
"""
import argparse
import csv
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vardp_runs  # noqa: E402

VARIANT_ORDER = ["FFT", "LoRA", "LNTuning", "LoRA-A", "LoRA-M", "LoRA-AM", "LoRA-AM+LN"]


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-6)


def mean(values):
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def fmt(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.2f}" if abs(v) >= 1 or v == 0 else f"{v:.3f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


class Table:
    def __init__(self, name, title, header):
        self.name, self.title, self.header, self.rows = name, title, header, []

    def add(self, *row):
        self.rows.append(list(row))

    def write(self, out_dir):
        with open(os.path.join(out_dir, f"{self.name}.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(self.header)
            w.writerows(["" if isinstance(v, float) and math.isnan(v) else v for v in r] for r in self.rows)
        with open(os.path.join(out_dir, f"{self.name}.md"), "w") as f:
            f.write(f"## {self.title}\n\n| " + " | ".join(self.header) + " |\n")
            f.write("|" + "---|" * len(self.header) + "\n")
            for r in self.rows:
                f.write("| " + " | ".join(fmt(v) for v in r) + " |\n")
            if not self.rows:
                f.write("\n(no matching runs)\n")


def dp_row(runs):
    """Shared columns of the DP tables for the runs of one cell."""
    return [mean([r.epsilon_spent for r in runs]), mean([r.fid for r in runs]),
            mean([r.metric("precision") for r in runs]), mean([r.metric("recall") for r in runs]),
            runs[0].trainable_params, mean([r.pflops for r in runs]), len(runs)]


DP_COLUMNS = ["ε spent", "FID", "precision", "recall", "trainable params", "PFLOPs", "runs"]


def variant_key(v):
    return VARIANT_ORDER.index(v) if v in VARIANT_ORDER else len(VARIANT_ORDER)


def group(runs, key):
    cells = {}
    for r in runs:
        cells.setdefault(key(r), []).append(r)
    return cells


def table1(runs):
    runs = [r for r in runs if not r.dp]
    datasets = sorted({r.dataset for r in runs}, key=lambda d: list(vardp_runs.DATASET_NAMES).index(d)
                      if d in vardp_runs.DATASET_NAMES else 99)
    t = Table("table1", "Table 1: FID of non-private adaptations",
              ["model", "method", "trainable params"] + [vardp_runs.DATASET_NAMES.get(d, d) for d in datasets])
    cells = group(runs, lambda r: (r.model, r.variant))
    for model, variant in sorted(cells, key=lambda k: (k[0], variant_key(k[1]))):
        cell = cells[(model, variant)]
        t.add(model, variant, cell[0].trainable_params,
              *[mean([r.fid for r in cell if r.dataset == d]) for d in datasets])
    return t


def table2(runs):
    t = Table("table2", "Table 2: DP adaptations at ε = 10, k = 1 and k = 128",
              ["method", "k", "dataset", "model"] + DP_COLUMNS)
    sel = [r for r in runs if r.dp and close(r.target_epsilon, 10) and r.augmult in (1, 128)
           and r.variant in ("LoRA", "LNTuning")]
    cells = group(sel, lambda r: (r.variant, r.augmult, r.dataset_label, r.model))
    for key in sorted(cells, key=lambda k: (variant_key(k[0]), k[1], k[2], k[3])):
        t.add(*key, *dp_row(cells[key]))
    return t


def table3(runs):
    t = Table("table3", "Table 3: DP LoRA, k = 32, against ε",
              ["target ε", "noise multiplier", "dataset", "model"] + DP_COLUMNS)
    sel = [r for r in runs if r.dp and r.variant == "LoRA" and r.augmult == 32]
    cells = group(sel, lambda r: (r.target_epsilon, r.dataset_label, r.model))
    for key in sorted(cells):
        t.add(key[0], mean([float(r.get("noise_multiplier", math.nan)) for r in cells[key]]), *key[1:],
              *dp_row(cells[key]))
    return t


def table9(runs):
    t = Table("table9", "Table 9: DP LoRA at ε = 10 against the augmentation multiplicity k",
              ["k", "noise multiplier", "dataset", "model"] + DP_COLUMNS + ["wall hours"])
    sel = [r for r in runs if r.dp and r.variant == "LoRA" and close(r.target_epsilon, 10)]
    cells = group(sel, lambda r: (r.augmult, r.dataset_label, r.model))
    for key in sorted(cells):
        c = cells[key]
        t.add(key[0], mean([float(r.get("noise_multiplier", math.nan)) for r in c]), *key[1:], *dp_row(c),
              mean([r.wall_seconds / 3600 for r in c]))
    return t


def table10(runs):
    t = Table("table10", "Table 10: DP adaptations of different parts of VAR at ε = 10, k = 128",
              ["adaptation", "dataset", "model"] + DP_COLUMNS)
    sel = [r for r in runs if r.dp and close(r.target_epsilon, 10) and r.augmult == 128 and r.method != "full"]
    cells = group(sel, lambda r: ("LoRA-AM+LN" if r.variant == "LoRA" else r.variant, r.dataset_label, r.model))
    order = ["LoRA-A", "LoRA-M", "LoRA-AM", "LoRA-AM+LN", "LNTuning"]  # the paper's row order
    for key in sorted(cells, key=lambda k: (order.index(k[0]) if k[0] in order else 9, k[0], k[1], k[2])):
        t.add(*key, *dp_row(cells[key]))
    return t


TABLES = [table1, table2, table3, table9, table10]


def write_tables(runs, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    tables = [make(runs) for make in TABLES]
    for t in tables:
        t.write(out_dir)
    return tables


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs_root")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for t in write_tables(vardp_runs.find_runs(args.runs_root), args.out):
        print(f"{t.name}: {len(t.rows)} rows")


if __name__ == "__main__":
    main()
