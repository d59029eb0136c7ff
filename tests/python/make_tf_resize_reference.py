#!/usr/bin/python3
"""Reference outputs of TensorFlow 1's tf.image.resize_bilinear (align_corners=False,
half_pixel_centers=False) for eval_tf_resize_test.cpp, computed with numpy from the documented
formula (TF's resize_bilinear_op.cc with the legacy scaler), in float32 as TF's CPU kernel:

    scale = in / out;  s = i * scale;  lo = floor(s);  hi = min(ceil(s), in - 1);  w = s - lo
    top = tl + (tr - tl) * wx;  bottom = bl + (br - bl) * wx;  out = top + (bottom - top) * wy

The four corners are gathered at the output size (the C++ code lerps columns first instead).

usage: make_tf_resize_reference.py OUT.h5
OUT.h5: one group per case, /<case>/input float32 (N, C, H, W), /<case>/output float32
(N, C, out_h, out_w); attribute `cases` on the root lists them.
"""
import sys

import h5py
import numpy as np


def taps(in_size, out_size):
    scale = np.float32(in_size) / np.float32(out_size)
    s = np.arange(out_size, dtype=np.float32) * scale
    assert s.dtype == np.float32
    lo = np.floor(s).astype(np.int64)
    hi = np.minimum(np.ceil(s).astype(np.int64), in_size - 1)
    w = (s - np.floor(s)).astype(np.float32)
    return lo, hi, w


def resize(x, out_h, out_w):
    ylo, yhi, wy = taps(x.shape[2], out_h)
    xlo, xhi, wx = taps(x.shape[3], out_w)
    tl = x[:, :, ylo][:, :, :, xlo]
    tr = x[:, :, ylo][:, :, :, xhi]
    bl = x[:, :, yhi][:, :, :, xlo]
    br = x[:, :, yhi][:, :, :, xhi]
    wx = wx[None, None, None, :]
    wy = wy[None, None, :, None]
    top = tl + (tr - tl) * wx
    bottom = bl + (br - bl) * wx
    out = top + (bottom - top) * wy
    assert out.dtype == np.float32
    return out


def main():
    out_path = sys.argv[1]
    rng = np.random.default_rng(20151205)
    # (name, N, C, H, W, out_h, out_w): pixel-valued inputs, as the evaluator feeds uint8 images.
    cases = [
        ("up_5x7_to_299", 1, 2, 5, 7, 299, 299),
        ("up_64_to_299", 2, 3, 64, 64, 299, 299),
        ("down_300_to_299", 1, 3, 300, 300, 299, 299),
        ("mixed_17x40_to_9x13", 2, 1, 17, 40, 9, 13),
        ("same_6x5", 1, 1, 6, 5, 6, 5),
    ]
    with h5py.File(out_path, "w") as f:
        for name, n, c, h, w, oh, ow in cases:
            x = rng.integers(0, 256, size=(n, c, h, w)).astype(np.float32)
            g = f.create_group(name)
            g["input"] = x
            g["output"] = resize(x, oh, ow)
        f.attrs["cases"] = [c[0] for c in cases]


if __name__ == "__main__":
    main()
