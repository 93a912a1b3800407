#!/usr/bin/env bash
# Installs what zinc needs to build and test on Debian 12 (idempotent; quiet when done).
# The CUDA toolkit is not a Debian package: when /usr/local/cuda/bin/nvcc exists the build
# enables the CUDA backend, otherwise it builds CPU-only. The plain build uses GCC.
# The last four packages are for the sanitized tree only (launch/build_sanitized.sh: the
# fuzz targets and the test suite under ASan + UBSan, built with clang):
#   clang               the compiler
#   libclang-rt-14-dev  its sanitizer and libFuzzer runtimes
#   libomp-dev          OpenMP for clang (GCC brings its own libgomp)
#   llvm                llvm-symbolizer, so sanitizer reports name files and lines
set -euo pipefail

PACKAGES=(build-essential cmake ninja-build pkg-config
          libopenmpi-dev openmpi-bin libhdf5-dev libboost-program-options-dev catch2
          libopenblas-dev liburing-dev nlohmann-json3-dev python3
          slurm-wlm munge   # a local Slurm for tests/cli/case_slurm.sh (launch/slurm/ci/)
          clang libclang-rt-14-dev libomp-dev llvm)  # the sanitized tree (launch/build_sanitized.sh)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "zinc setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
