#!/usr/bin/python3
"""Every table (Markdown + CSV) and figure (PNG) of the paper from a tree of run directories.

  /usr/bin/python3 analysis/report.py RUNS_ROOT --out DIR

Writes DIR/table{1,2,3,9,10}.{md,csv}, DIR/{pflops,pflops_dp,fid_steps,eps_fid}.png,
DIR/runs.csv (one line per run) and DIR/report.md (all tables, links to the figures).
Uses Debian's python3-h5py, python3-numpy and python3-matplotlib only.
"""
import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figures  # noqa: E402
import tables  # noqa: E402
import vardp_runs  # noqa: E402

RUN_COLUMNS = ["path", "dataset", "model", "variant", "dp", "target_epsilon", "epsilon_spent", "augmult",
               "trainable_params", "pflops", "wall_seconds", "fid", "done"]


def write_runs_csv(runs, root, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(RUN_COLUMNS)
        for r in runs:
            w.writerow([os.path.relpath(r.path, root), r.dataset, r.model, r.variant, int(r.dp), r.target_epsilon,
                        r.epsilon_spent, r.augmult, r.trainable_params, r.pflops, r.wall_seconds, r.fid,
                        int(r.done)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs_root")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    runs = vardp_runs.find_runs(args.runs_root)
    if not runs:
        sys.exit(f"no run directories (with metrics.h5) under {args.runs_root}")
    unfinished = [r.name for r in runs if not r.done]
    os.makedirs(args.out, exist_ok=True)
    write_runs_csv(runs, args.runs_root, os.path.join(args.out, "runs.csv"))
    made = tables.write_tables(runs, args.out)
    pngs = figures.write_figures(runs, args.out)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(f"# vardp report: {len(runs)} runs under {args.runs_root}\n\n")
        if unfinished:
            f.write(f"Unfinished runs (no DONE): {', '.join(unfinished)}\n\n")
        for t in made:
            f.write(open(os.path.join(args.out, f"{t.name}.md")).read() + "\n")
        f.write("".join(f"![{os.path.basename(p)}]({os.path.basename(p)})\n\n" for p in pngs))
    print(f"{len(runs)} runs ({len(unfinished)} unfinished) -> {args.out}")
    for t in made:
        print(f"  {t.name}: {len(t.rows)} rows")
    for p in pngs:
        print(f"  {os.path.basename(p)}")


if __name__ == "__main__":
    main()
