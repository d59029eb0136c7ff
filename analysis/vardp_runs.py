"""Reads vardp run directories (docs/formats/run.md) into plain Python objects.

The only module of analysis/ that knows vardp's file layout; tables.py and figures.py work on
the `Run` objects it returns. Needs h5py and numpy (Debian: python3-h5py, python3-numpy).
"""
import math
import os
import re

import h5py
import numpy as np

METRICS_FORMAT = "vardp.metrics"
FLOPS_FORMAT = "vardp.flops"
EVAL_FORMAT = "vardp.metrics.eval"
MAX_VERSION = 1  # newest format_version of each file that this reader understands

DATASET_NAMES = {
    "food101": "Food-101", "cub200": "CUB-200-2011", "flowers102": "Oxford Flowers",
    "stanford_cars": "Stanford Cars", "oxford_pets": "Oxford-IIIT Pet", "fashion_mnist": "Fashion-MNIST",
}
METHOD_NAMES = {"full": "FFT", "lora": "LoRA", "lntune": "LNTuning"}


def _plain(v):
    """h5py attribute value -> str / int / float / list."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _attrs(obj):
    return {k: _plain(v) for k, v in obj.attrs.items()}


def _check_format(f, path, fmt):
    got = _plain(f.attrs.get("format", ""))
    if got != fmt:
        raise ValueError(f"{path}: format '{got}', expected '{fmt}'")
    if int(_plain(f.attrs.get("format_version", 0))) > MAX_VERSION:
        raise ValueError(f"{path}: {fmt} version {f.attrs['format_version']} is newer than this reader")


def _series(group):
    """{name: (steps, values)} of a TimeSeriesWriter group; the last entry of each step wins
    (a resumed run logs the steps after its checkpoint again)."""
    out = {}
    for name, g in group.items():
        steps, values = g["step"][()], g["value"][()]
        last = {}
        for i, s in enumerate(steps.tolist()):
            last[s] = i
        keep = np.array(sorted(last.values()), dtype=np.int64)
        order = np.argsort(steps[keep], kind="stable")
        out[name] = (steps[keep][order], values[keep][order])
    return out


def read_eval(path):
    """Metrics of one eval file: fid, sfid, precision, recall (first k), class_accuracy, step."""
    with h5py.File(path, "r") as f:
        _check_format(f, path, EVAL_FORMAT)
        m = {"path": path}
        for key in ("fid", "sfid", "kid", "class_accuracy"):
            if key in f:
                m[key] = float(f[key][()])
        if "pr" in f:
            for key in ("precision", "recall", "density", "coverage"):
                if key in f["pr"]:
                    m[key] = float(f["pr"][key][0])
        if "step" in f.attrs:
            m["step"] = int(_plain(f.attrs["step"]))
    return m


class Run:
    """One run directory. Attributes: path, name, attrs (metrics.h5 root attributes), series
    ({name: (steps, values)}), done, pflops, wall_seconds, phase_seconds, evals (list of eval
    dicts sorted by step, final model last), final (eval dict of eval.h5 or None).

    wall_seconds is the training time from metrics.h5 (the sum of `step_time`, one entry per
    step), which is private run state: a DP run's flops.h5 is releasable and holds no times
    (docs/formats/run.md). Files without `step_time` fall back to flops.h5's `wall_seconds`.
    phase_seconds comes from flops.h5 and exists for non-private runs only ({} otherwise)."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.name = os.path.basename(self.path.rstrip("/"))
        mpath = os.path.join(self.path, "metrics.h5")
        with h5py.File(mpath, "r") as f:
            _check_format(f, mpath, METRICS_FORMAT)
            self.attrs = _attrs(f)
            self.series = _series(f["metrics"]) if "metrics" in f else {}
        self.done = os.path.exists(os.path.join(self.path, "DONE"))
        self.pflops = self.wall_seconds = math.nan
        self.phase_seconds = {}
        if "step_time" in self.series:
            self.wall_seconds = float(np.sum(self.series["step_time"][1]))
        fpath = os.path.join(self.path, "flops.h5")
        if os.path.exists(fpath):
            with h5py.File(fpath, "r") as f:
                _check_format(f, fpath, FLOPS_FORMAT)
                self.pflops = float(f["total_pflops"][()])
                if math.isnan(self.wall_seconds) and "wall_seconds" in f:
                    self.wall_seconds = float(f["wall_seconds"][()])
                if "phase_seconds" in f:
                    self.phase_seconds = {k: float(v[()]) for k, v in f["phase_seconds"].items()}
        self.evals, self.final = [], None
        for fname in sorted(os.listdir(self.path)):
            m = re.fullmatch(r"eval(?:-(\d+))?\.h5", fname)
            if not m:
                continue
            e = read_eval(os.path.join(self.path, fname))
            if "step" not in e:
                e["step"] = int(m.group(1)) if m.group(1) else int(self.attrs.get("total_steps", 0))
            if not m.group(1):
                self.final = e
            self.evals.append(e)
        self.evals.sort(key=lambda e: (e["step"], e is self.final))

    # --- what the tables group by ---------------------------------------------------------------
    def get(self, key, default=None):
        return self.attrs.get(key, default)

    @property
    def dp(self):
        return bool(self.get("dp_enabled", 0))

    @property
    def method(self):
        return self.get("method", "?")

    @property
    def variant(self):
        """FFT, LNTuning, LoRA (attn+mlp+adaln), or LoRA-A / LoRA-M / LoRA-AM / ... by targets."""
        if self.method != "lora":
            return METHOD_NAMES.get(self.method, self.method)
        targets = self.get("lora_targets", ["attn", "mlp", "adaln"])
        targets = [targets] if isinstance(targets, str) else targets
        if set(targets) == {"attn", "mlp", "adaln"}:
            return "LoRA"
        code = "".join(c for t, c in (("attn", "A"), ("mlp", "M")) if t in targets)
        if "adaln" in targets:
            code += "+LN" if code else "LN"
        return "LoRA-" + code

    @property
    def dataset(self):
        return self.get("dataset", "?")

    @property
    def dataset_label(self):
        return DATASET_NAMES.get(self.dataset, self.dataset)

    @property
    def model(self):
        return self.get("model", "?")

    @property
    def target_epsilon(self):
        return float(self.get("target_epsilon", math.nan))

    @property
    def epsilon_spent(self):
        s = self.series.get("epsilon")
        return float(s[1][-1]) if s is not None and len(s[1]) else math.nan

    @property
    def augmult(self):
        return int(self.get("augmult", 1))

    @property
    def trainable_params(self):
        return int(self.get("trainable_params", 0))

    @property
    def fid(self):
        return self.final["fid"] if self.final and "fid" in self.final else math.nan

    def metric(self, key):
        return self.final.get(key, math.nan) if self.final else math.nan

    def __repr__(self):
        return f"Run({self.path!r}, {self.variant}, {self.dataset}, {self.model}, dp={self.dp})"


def find_runs(root):
    """Every run directory (one holding metrics.h5) under root, sorted by path."""
    runs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "metrics.h5" in filenames:
            runs.append(Run(dirpath))
    return runs


def load_run(path):
    return Run(path)
