#!/bin/bash
# Prepares .gpu-deps/ (run on the Debian 12 CPU machine, from the project root) for a CUDA build
# of vardp on a GPU host that has no network (Ubuntu 24.04, CUDA, pip-wheel LibTorch, Open MPI,
# NCCL, HDF5 1.10 -dev) but lacks the other build dependencies:
#   - toml++, Boost.Program_options 1.74, GoogleTest (the shared list, ../shared/gpu/fetch-debs.sh);
#   - libzip, matio, Eigen3, nlohmann_json, libjpeg, libpng, zlib, libsodium headers (-dev) with the runtime
#     libraries they link to (the host may lack them too). jobs/gpu-env.sh unpacks each one only
#     where the host does not already have it.
#   - the test fixtures the GPU tests read (../shared does not travel to the GPU host):
#     .gpu-deps/fixtures/var_official_tiny, used through VARDP_SHARED_DIR=.gpu-deps.
# Usage: jobs/gpu-fetch-debs.sh [DIR]   (default .gpu-deps; git-ignored, so name it in `carry`)
# Pkg-config notes: libzip.pc and matio.pc have no Requires (no further .pc files needed);
# matio.pc links -L/usr/lib/x86_64-linux-gnu/hdf5/serial/lib -lhdf5 -lz, which the host's
# libhdf5-dev (same Debian/Ubuntu layout) and zlib1g-dev provide; libmatio.so.11 needs
# libhdf5_serial.so.103 (HDF5 1.10, same soname on Ubuntu 24.04), libzip.so.4 needs
# libbz2.so.1.0, libcrypto.so.3 and libz.so.1 (all in a base Ubuntu 24.04).
set -euo pipefail
dir=${1:-.gpu-deps}
shared=${VARDP_SHARED_DIR:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
mkdir -p "$dir"
rm -f "$dir"/*.deb
pkgs=(
  # shared list (../shared/gpu/fetch-debs.sh)
  libtomlplusplus-dev libtomlplusplus3
  libboost-program-options1.74-dev libboost-program-options1.74.0 libboost1.74-dev
  libgtest-dev
  # the rest of CMakeLists.txt's find_package / pkg_check_modules
  libzip-dev libzip4
  libmatio-dev libmatio11
  libeigen3-dev
  nlohmann-json3-dev
  libjpeg62-turbo-dev libjpeg62-turbo
  libpng-dev libpng16-16
  zlib1g-dev
  libsodium-dev libsodium23        # ChaCha20 + getrandom: DP secret coins (docs/privacy.md)
)
# A failed download is caught by the check below.
(cd "$dir" && apt-get download "${pkgs[@]}") 2>&1 |
  grep -vE '^(Get:|Fetched|W: Download is performed unsandboxed)' || true
for p in "${pkgs[@]}"; do
  compgen -G "$dir/${p}_*.deb" >/dev/null || { echo "missing: $p" >&2; exit 1; }
done
# Fixtures of the CUDA agreement and golden tests.
if [[ -d $shared/fixtures/var_official_tiny ]]; then
  mkdir -p "$dir/fixtures"
  rm -rf "$dir/fixtures/var_official_tiny"
  cp -r "$shared/fixtures/var_official_tiny" "$dir/fixtures/"
  cp "$shared/fixtures/official_shapes.json" "$dir/fixtures/" 2>/dev/null || true
  chmod -R u+w "$dir/fixtures"
else
  echo "warning: $shared/fixtures/var_official_tiny not found: GPU fixture tests will fail" >&2
fi
# The synthetic dataset of the CUDA training check (the GPU host may lack h5py).
/usr/bin/python3 "$(dirname "$0")/../tests/python/make_train_dataset.py" "$dir/train_tiny.h5" --n 24 --classes 4
ls -1 "$dir"
du -sh "$dir"
