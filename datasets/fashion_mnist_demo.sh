#!/usr/bin/env bash
# Public and private Fashion-MNIST parts for the embedded demo, from Debian's
# dataset-fashion-mnist package: public = classes 0-4 (every image), private = classes 5-9 with
# 200 training images per class (1,000) and every test image. Both are stored at 36 x 36 for a
# 32 x 32 model (VAR's 1.125 mid resolution). Usage: datasets/fashion_mnist_demo.sh [OUT] [args]
set -euo pipefail
OUT=${1:-data/fashion_mnist}
shift || true
VARDP=${VARDP:-vardp}
"$VARDP" prepare --format fashion_mnist --out "$OUT/public" --classes 0-4 "$@"
"$VARDP" prepare --format fashion_mnist --out "$OUT/private" --classes 5-9 --per-class-train 200 "$@"
