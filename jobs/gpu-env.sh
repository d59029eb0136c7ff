# shellcheck shell=bash
# Source this on the GPU host, from the project root:   source jobs/gpu-env.sh [DIR]
# The in-tree copy of ../shared/gpu/env.sh (../shared does not travel to the GPU host), extended
# for every dependency of CMakeLists.txt. It unpacks the .deb files of DIR (default .gpu-deps,
# made by jobs/gpu-fetch-debs.sh) into $VARDP_DEPS_PREFIX (default /tmp/vardp-deps), skipping a
# package group whose headers and library the host already has (VARDP_DEPS_FORCE_ALL=1 unpacks
# everything), fixes the unpacked pkg-config files (they say prefix=/usr) and dangling absolute
# symlinks, and exports what CMake, pkg-config, the compiler and the dynamic linker need, plus the
# pip wheel's CUDA LibTorch and VARDP_SHARED_DIR (the carried fixtures).
# Without python3+torch (a CPU test of this file) VARDP_TORCH_PREFIX may name LibTorch's prefix.
_vd_dir=${1:-.gpu-deps}
_vd_prefix=${VARDP_DEPS_PREFIX:-/tmp/vardp-deps}
_vd_arch=x86_64-linux-gnu
_vd_hostlib=/usr/lib/$_vd_arch
mkdir -p "$_vd_prefix"

# Which host files make a package group unnecessary (all must exist). Groups not listed
# (toml++, Boost 1.74, GoogleTest) are always unpacked, as in ../shared/gpu/env.sh.
_vd_host_has() {
  local f
  for f in "$@"; do [[ -e $f ]] || return 1; done
}
_vd_skip() {  # $1: .deb file name; returns 0 when the host already provides that package
  [[ ${VARDP_DEPS_FORCE_ALL:-0} == 1 ]] && return 1
  case ${1##*/} in
    zlib1g-dev_*) _vd_host_has /usr/include/zlib.h "$_vd_hostlib/libz.so" ;;
    libjpeg62-turbo-dev_* | libjpeg62-turbo_*) _vd_host_has /usr/include/jpeglib.h "$_vd_hostlib/libjpeg.so" ;;
    libpng-dev_* | libpng16-16_*) _vd_host_has /usr/include/png.h "$_vd_hostlib/libpng.so" ;;
    libzip-dev_* | libzip4_*) _vd_host_has /usr/include/zip.h "$_vd_hostlib/libzip.so" ;;
    libmatio-dev_* | libmatio11_*) _vd_host_has /usr/include/matio.h "$_vd_hostlib/libmatio.so" ;;
    libsodium-dev_* | libsodium23_*) _vd_host_has /usr/include/sodium.h "$_vd_hostlib/libsodium.so" ;;
    libeigen3-dev_*) _vd_host_has /usr/include/eigen3/Eigen/Core /usr/share/eigen3/cmake/Eigen3Config.cmake ;;
    nlohmann-json3-dev_*)
      _vd_host_has /usr/include/nlohmann/json.hpp /usr/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake ;;
    *) return 1 ;;
  esac
}
_vd_used=() _vd_skipped=()
for _vd_f in "$_vd_dir"/*.deb; do
  [[ -e $_vd_f ]] || { echo "gpu-env: no .deb files in $_vd_dir (run jobs/gpu-fetch-debs.sh; carry it)" >&2; break; }
  _vd_name=${_vd_f##*/}
  if _vd_skip "$_vd_f"; then
    _vd_skipped+=("${_vd_name%%_*}")
  else
    dpkg -x "$_vd_f" "$_vd_prefix"
    _vd_used+=("${_vd_name%%_*}")
  fi
done

# pkg-config files hard-code prefix=/usr (and some libdir/includedir=/usr/...): point them into
# the unpacked tree. (pkg-config --define-prefix would strip lib/x86_64-linux-gnu wrongly.)
while IFS= read -r -d '' _vd_pc; do
  sed -i -E \
    -e "s#^(prefix|exec_prefix|libdir|includedir|sharedlibdir)=/usr(/|\$)#\\1=$_vd_prefix/usr\\2#" \
    -e "s#-I/usr/include( |\$)#-I$_vd_prefix/usr/include\\1#" "$_vd_pc"
done < <(find "$_vd_prefix" -name '*.pc' -print0)
# Absolute symlinks of -dev packages (libz.so -> /lib/.../libz.so.1.2.13) dangle on another
# distribution: point them at the host's library of the same soname.
while IFS= read -r -d '' _vd_l; do
  if [[ ! -e $_vd_l ]]; then
    _vd_base=${_vd_l##*/}
    # shellcheck disable=SC2012
    _vd_host=$(ls "$_vd_hostlib/$_vd_base".[0-9]* "/lib/$_vd_arch/$_vd_base".[0-9]* 2>/dev/null | head -n1 || true)
    if [[ -n $_vd_host ]]; then ln -sfn "$_vd_host" "$_vd_l"; else echo "gpu-env: dangling $_vd_l" >&2; fi
  fi
done < <(find "$_vd_prefix/usr/lib" -type l -name 'lib*.so' -print0 2>/dev/null)

if [[ -n ${VARDP_TORCH_PREFIX:-} ]]; then
  _vd_torch_prefix=$VARDP_TORCH_PREFIX
else
  _vd_torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
fi
export VARDP_DEPS_PREFIX=$_vd_prefix
export CMAKE_PREFIX_PATH="$_vd_torch_prefix:$_vd_prefix/usr:$_vd_prefix/usr/lib/$_vd_arch/cmake:$_vd_prefix/usr/share/cmake${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PKG_CONFIG_PATH="$_vd_prefix/usr/lib/$_vd_arch/pkgconfig:$_vd_prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CPATH="$_vd_prefix/usr/include:$_vd_prefix/usr/include/$_vd_arch${CPATH:+:$CPATH}"
export LIBRARY_PATH="$_vd_prefix/usr/lib/$_vd_arch${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$_vd_prefix/usr/lib/$_vd_arch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Fixtures copied by jobs/gpu-fetch-debs.sh (tests read $VARDP_SHARED_DIR/fixtures/...).
if [[ -d $_vd_dir/fixtures ]]; then
  VARDP_SHARED_DIR=$(cd "$_vd_dir" && pwd)
  export VARDP_SHARED_DIR
fi
echo "vardp GPU env: torch prefix $_vd_torch_prefix; deps in $_vd_prefix"
echo "  unpacked: ${_vd_used[*]:-none}"
echo "  host has: ${_vd_skipped[*]:-none}"
unset _vd_dir _vd_prefix _vd_arch _vd_hostlib _vd_f _vd_name _vd_pc _vd_l _vd_base _vd_host _vd_torch_prefix \
  _vd_used _vd_skipped
unset -f _vd_host_has _vd_skip
