#!/usr/bin/python3
"""Full-size torch.save files for the VARDP_BIG_TESTS load benchmarks.

usage: make_pth_big.py OUT.pth MODEL    MODEL = a key of fixtures/official_shapes.json
                                        (var_d16, var_d20, vae_ch160v4096z32, ...)
       make_pth_big.py OUT.pth zip64    a > 4 GiB file (zip64 records) with a tensor after 4 GiB

Tensors are torch.empty (fast) except two marker values per tensor: element 0 = index of the
key, last element = -index (int64: index and -index) so the loader test can check positions.
"""
import collections
import json
import os
import sys

import torch


def main():
    out, model = sys.argv[1], sys.argv[2]
    sd = collections.OrderedDict()
    if model == "zip64":
        sd["head"] = torch.arange(8, dtype=torch.float32)
        big = torch.empty(2**32 + 64, dtype=torch.uint8)
        big[0], big[-1] = 11, 22
        sd["big"] = big
        sd["tail"] = torch.arange(10, dtype=torch.int64)
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        shared = os.environ.get("VARDP_SHARED_DIR", os.path.join(here, "..", "..", "..", "shared"))
        shapes = json.load(open(os.path.join(shared, "fixtures", "official_shapes.json")))[model]
        for idx, (key, shape, dtype) in enumerate(shapes):
            t = torch.empty(shape, dtype=getattr(torch, dtype))
            if t.numel() > 0:
                flat = t.view(-1)
                flat[0], flat[-1] = idx, -idx
            sd[key] = t
    torch.save(sd, out)


if __name__ == "__main__":
    main()
