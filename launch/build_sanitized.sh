#!/usr/bin/env bash
# Configures (once) and builds the sanitized tree SAN_BUILD_DIR (default build-san/), after
# launch/setup.sh: clang, AddressSanitizer + UBSan and libFuzzer's coverage on every library
# (ZINC_FUZZ, ZINC_SANITIZE), RelWithDebInfo, CPU only (-DZINC_CUDA=OFF: CI has no GPU, so no
# CUDA code would run under the sanitizers, and nvcc doubles the build). The fuzz targets
# (launch/fuzz.sh) and the sanitized test suite (launch/sanitize_tests.sh) share it, so CI
# compiles zinc with the sanitizers once.
#   bash launch/build_sanitized.sh [TARGET ...]      (default: everything)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SAN_BUILD_DIR:-$root/build-san}
bash "$root/launch/setup.sh"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DZINC_FUZZ=ON -DZINC_SANITIZE=ON -DZINC_CUDA=OFF >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
