"""Checks the provenance attributes of a vardp HDF5 file with h5py (what analysis users see).

usage: check_provenance.py FILE FORMAT WORLD_SIZE
"""
import sys

import h5py

path, fmt, world = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(path, "r") as f:
    a = f.attrs
    def text(name):
        v = a[name]
        return v.decode() if isinstance(v, bytes) else str(v)
    required = ["format", "format_version", "vardp_version", "git_sha", "created_utc", "config_toml", "world_size"]
    missing = [k for k in required if k not in a]
    assert not missing, f"missing attributes {missing}"
    assert text("format") == fmt, text("format")
    assert int(a["format_version"]) >= 1
    assert int(a["world_size"]) == world, a["world_size"]
    assert text("created_utc").endswith("Z")
    cfg = text("config_toml")
    assert "[train]" in cfg and "seed = 5" in cfg, cfg[:200]
    assert text("SLURM_JOB_ID") == "4242" and text("SLURM_ARRAY_TASK_ID") == "3"
    assert list(f["ranks"][...]) == list(range(world))
    names = sorted(a.keys())
print(f"{path}: provenance OK ({', '.join(names)})")
