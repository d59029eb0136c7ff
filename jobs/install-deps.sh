#!/usr/bin/env bash
# Installs the Debian 12 packages vardp needs to build, test and run its demo. Idempotent and
# quiet when everything is present. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev                     # LibTorch 1.13 (CPU)
  libopenblas0-pthread             # optimised BLAS for LibTorch on CPU (the default libblas is the slow reference one)
  libopenmpi-dev openmpi-bin       # MPI
  libhdf5-dev                      # HDF5 C API
  libboost-program-options-dev     # CLI
  libtomlplusplus-dev              # TOML configs
  libgtest-dev                     # tests
  libsodium-dev                    # ChaCha20 + getrandom: the secret coins of DP (docs/privacy.md)
  libzip-dev                       # .pth checkpoints are zip archives
  libeigen3-dev                    # float64 linear algebra of FID
  nlohmann-json3-dev               # JSON output and fixtures
  libjpeg-dev libpng-dev           # image decoding (vardp prepare)
  libmatio-dev                     # MATLAB v5 annotation files (Flowers, Cars)
  dataset-fashion-mnist            # the embedded demo's data
  python3-h5py python3-numpy python3-matplotlib python3-pil   # analysis scripts and tests
  python3-torch                    # test inputs in torch.save format
  shellcheck                       # job-script checks
  procps                           # pkill in the preemption test (absent from minimal images)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root for: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" > /tmp/vardp-apt.log 2>&1 || {
  tail -n 30 /tmp/vardp-apt.log >&2
  exit 1
}
echo "install-deps: done"
