#!/usr/bin/python3
"""Reference images for vardp's image decoding and PIL-compatible Lanczos resize.

Run with Debian's python (python3-pil, python3-numpy) from the repository root:

    /usr/bin/python3 tests/python/make_lanczos_reference.py

It writes tests/data/image_ref/: deterministic synthetic source images (PNG, lossless), PIL's
Image.resize(..., Image.LANCZOS) of them, the stored square of `vardp prepare` computed the way
VAR's torchvision pipeline does it (Resize(S) = shorter side to S, longer int(S*long/short), then
CenterCrop(S) with round-half-even offsets; torchvision itself is not installed on Debian, so its
size rule is written out below), JPEG files in the colour spaces found in CUB/Cars (RGB,
grayscale, Adobe CMYK, progressive) with PIL's `convert("RGB")` of each, and PNGs in palette/alpha
modes with their PIL RGB conversion. manifest.json lists every case; tests/unit/data_image_test.cpp
and data_resize_test.cpp compare vardp against these files.
"""
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "image_ref")
LANCZOS = Image.LANCZOS if hasattr(Image, "LANCZOS") else Image.Resampling.LANCZOS


def synthetic(width, height, seed):
    """Smooth gradients, hard edges, a thin-line grating and noise: exercises ringing/aliasing."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 120 * np.sin(x / max(width, 1) * 6.0 + seed)
    g = 255.0 * y / max(height - 1, 1)
    b = np.where((x // 7 + y // 5) % 2 == 0, 230.0, 25.0)
    img = np.stack([r, g, b], axis=-1)
    cx, cy = width * 0.6, height * 0.4
    disk = (x - cx) ** 2 + (y - cy) ** 2 < (min(width, height) * 0.25) ** 2
    img[disk] = [250, 20, 60]
    img[:, ::3, :] = img[:, ::3, :] * 0.5  # fine vertical grating (aliases without antialiasing)
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def shorter_side_size(w, h, s):
    # torchvision.transforms.functional._compute_resized_output_size for an int size
    short, long_ = (w, h) if w <= h else (h, w)
    new_short, new_long = s, int(s * long_ / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def center_crop(img, s):
    # torchvision CenterCrop: int(round((size - crop) / 2.0)), Python's round (half to even)
    w, h = img.size
    top = int(round((h - s) / 2.0))
    left = int(round((w - s) / 2.0))
    return img.crop((left, top, left + s, top + s))


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []

    sources = {
        "src_landscape.png": synthetic(160, 120, 1),
        "src_portrait.png": synthetic(61, 97, 2),
        "src_small.png": synthetic(20, 13, 3),
        "src_square.png": synthetic(75, 75, 4),
    }
    for name, img in sources.items():
        img.save(os.path.join(OUT, name))

    # Plain resizes: down, up, mixed (down in x, up in y), odd factors.
    resizes = [
        ("src_landscape.png", 54, 40),
        ("src_landscape.png", 37, 29),
        ("src_square.png", 83, 41),
        ("src_portrait.png", 23, 131),
        ("src_small.png", 47, 31),
        ("src_square.png", 32, 32),
    ]
    for src, w, h in resizes:
        out = "lanczos_%s_%dx%d.png" % (src[4:-4], w, h)
        Image.open(os.path.join(OUT, src)).convert("RGB").resize((w, h), LANCZOS).save(
            os.path.join(OUT, out))
        cases.append({"kind": "resize", "source": src, "width": w, "height": h, "expected": out})

    # The stored square of `vardp prepare` (VAR: Resize(S, LANCZOS) then CenterCrop(S)).
    for src, s in [("src_landscape.png", 36), ("src_portrait.png", 36), ("src_small.png", 36),
                   ("src_landscape.png", 72), ("src_square.png", 36)]:
        img = Image.open(os.path.join(OUT, src)).convert("RGB")
        resized = img.resize(shorter_side_size(img.width, img.height, s), LANCZOS)
        out = "stored_%s_%d.png" % (src[4:-4], s)
        center_crop(resized, s).save(os.path.join(OUT, out))
        cases.append({"kind": "stored_square", "source": src, "size": s, "expected": out})

    # Decoding: JPEG colour spaces and PNG modes, PIL's convert("RGB") as the reference.
    base = synthetic(48, 40, 5)
    decodes = []
    base.save(os.path.join(OUT, "jpeg_rgb.jpg"), quality=90)
    decodes.append("jpeg_rgb.jpg")
    base.convert("L").save(os.path.join(OUT, "jpeg_gray.jpg"), quality=90)
    decodes.append("jpeg_gray.jpg")
    base.convert("CMYK").save(os.path.join(OUT, "jpeg_cmyk_adobe.jpg"), quality=90)
    decodes.append("jpeg_cmyk_adobe.jpg")
    base.save(os.path.join(OUT, "jpeg_progressive.jpg"), quality=85, progressive=True)
    decodes.append("jpeg_progressive.jpg")
    base.save(os.path.join(OUT, "jpeg_420.jpg"), quality=75, subsampling=2)
    decodes.append("jpeg_420.jpg")
    base.convert("P", palette=Image.ADAPTIVE, colors=64).save(os.path.join(OUT, "png_palette.png"))
    decodes.append("png_palette.png")
    rgba = base.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    rgba.save(os.path.join(OUT, "png_rgba.png"))
    decodes.append("png_rgba.png")
    base.convert("L").save(os.path.join(OUT, "png_gray.png"))
    decodes.append("png_gray.png")
    base.convert("LA").save(os.path.join(OUT, "png_gray_alpha.png"))
    decodes.append("png_gray_alpha.png")
    for name in decodes:
        out = name.rsplit(".", 1)[0] + "_rgb.png"
        Image.open(os.path.join(OUT, name)).convert("RGB").save(os.path.join(OUT, out))
        cases.append({"kind": "decode", "source": name, "expected": out})

    manifest = {
        "generator": "tests/python/make_lanczos_reference.py",
        "pil_version": PIL.__version__,
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "cases": cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("wrote %d cases to %s" % (len(cases), os.path.normpath(OUT)))


if __name__ == "__main__":
    main()
