#!/usr/bin/env bash
# Configures and builds zinc into BUILD_DIR (default build/), after launch/setup.sh.
# CUDA is on when nvcc is found (/usr/local/cuda/bin), as CI builds it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/launch/setup.sh"
export PATH=/usr/local/cuda/bin:$PATH
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${ZINC_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$build" -j"$(nproc)"
