#!/usr/bin/python3
"""Writes a small synthetic dataset file in vardp's dataset format (docs/formats/dataset.md) for
the training tests: each class is a distinct pattern (a coloured disk on a class-specific
background with a stripe orientation) plus noise, so a model can learn it in a few steps.

usage: make_train_dataset.py OUT.h5 [--n 24] [--classes 4] [--resolution 90] [--image-size 80] [--seed 0]
"""
import argparse
import hashlib

import h5py
import numpy as np


def make_images(n, classes, s, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % classes
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    images = np.empty((n, s, s, 3), dtype=np.uint8)
    for i, c in enumerate(labels):
        hue = np.array([np.cos(2 * np.pi * c / classes), np.sin(2 * np.pi * c / classes), (c % 2) * 2 - 1.0])
        stripes = np.sin(2 * np.pi * 4 * (xx * np.cos(c) + yy * np.sin(c)))
        cx, cy = 0.5 + 0.1 * rng.standard_normal(2)
        disk = ((xx - cx) ** 2 + (yy - cy) ** 2 < 0.06).astype(np.float32)
        img = 0.5 + 0.25 * hue[None, None, :] * stripes[..., None] + 0.3 * disk[..., None] * hue[None, None, :]
        img += 0.03 * rng.standard_normal(img.shape)
        images[i] = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    return images, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=90)
    ap.add_argument("--image-size", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="train")
    a = ap.parse_args()
    images, labels = make_images(a.n, a.classes, a.resolution, a.seed)
    with h5py.File(a.out, "w") as f:
        f.create_dataset("images", data=images, chunks=(1, a.resolution, a.resolution, 3))
        f.create_dataset("labels", data=labels)
        f.create_dataset("source_ids", data=np.arange(a.n, dtype=np.int64))
        attrs = {
            "format": "vardp.dataset", "format_version": np.int64(1), "vardp_version": "test",
            "git_sha": "test", "created_utc": "1970-01-01T00:00:00Z", "world_size": np.int64(1),
            "config_toml": "", "command_line": "make_train_dataset.py", "num_classes": np.int64(a.classes),
            "class_names": [f"class{c}" for c in range(a.classes)],
            "original_class_ids": np.arange(a.classes, dtype=np.int64), "source": "imagefolder",
            "source_root": "synthetic", "split": a.split, "split_rule": "synthetic",
            "image_size": np.int64(a.image_size), "resolution": np.int64(a.resolution),
            "resize_rule": "synthetic", "decoder": "none",
            "images_sha256": hashlib.sha256(images.tobytes()).hexdigest(),
            "images_sha256_rule": "SHA-256 of /images as raw uint8 bytes in C order",
            "num_skipped": np.int64(0),
        }
        for k, v in attrs.items():
            f.attrs[k] = v


if __name__ == "__main__":
    main()
