#!/usr/bin/python3
"""A stand-in for pytorch-fid's pt_inception-2015-12-05-6726825d.pth (tests cannot download the
real weights): the same 566 keys, shapes and dtypes (fixtures/official_shapes.json,
"fid_inception_v3"), in the same order, saved the same way (torch.save of an OrderedDict, zip
format, about 95 MB). Values are random but plausible, so that a forward pass stays finite:
conv weights N(0, 2/fan_in), BatchNorm weight 1 + N(0, .1^2), bias and running_mean N(0, .1^2),
running_var U(.5, 1.5), num_batches_tracked = the key's index, fc N(0, .01^2).

usage: make_inception_state_dict.py OUT.pth CHECK.h5
CHECK.h5 holds copies of a few tensors, one dataset per key (dots kept in the names), for the
loader test to compare against what the module holds after loading.
"""
import collections
import json
import os
import sys

import h5py
import torch

CHECK_KEYS = [
    "Conv2d_1a_3x3.conv.weight",
    "Conv2d_1a_3x3.bn.running_var",
    "Mixed_5b.branch_pool.bn.bias",
    "Mixed_6d.branch1x1.conv.weight",
    "Mixed_6d.branch1x1.bn.running_mean",
    "Mixed_7c.branch3x3dbl_3b.conv.weight",
    "Mixed_7c.branch_pool.bn.num_batches_tracked",
    "fc.bias",
]


def value(key, shape, dtype, index, gen):
    if dtype == "int64":  # num_batches_tracked
        return torch.tensor(index, dtype=torch.int64).reshape(shape)
    if key.endswith("conv.weight"):
        fan_in = shape[1] * shape[2] * shape[3]
        return torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
    if key.endswith("bn.weight"):
        return 1.0 + 0.1 * torch.randn(shape, generator=gen)
    if key.endswith("bn.bias") or key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=gen)
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=gen)
    if key.startswith("fc."):
        return 0.01 * torch.randn(shape, generator=gen)
    raise ValueError("unexpected key " + key)


def main():
    out_pth, out_check = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("VARDP_SHARED_DIR", os.path.join(here, "..", "..", "..", "shared"))
    with open(os.path.join(shared, "fixtures", "official_shapes.json")) as f:
        shapes = json.load(f)["fid_inception_v3"]
    gen = torch.Generator().manual_seed(20151205)
    sd = collections.OrderedDict()
    for index, (key, shape, dtype) in enumerate(shapes):
        t = value(key, shape, dtype, index, gen)
        assert list(t.shape) == shape and str(t.dtype) == "torch." + dtype, key
        sd[key] = t
    assert len(sd) == 566
    torch.save(sd, out_pth)  # zip format: the default since torch 1.6
    with h5py.File(out_check, "w") as f:
        for key in CHECK_KEYS:
            f[key] = sd[key].numpy()


if __name__ == "__main__":
    main()
