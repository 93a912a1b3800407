#!/usr/bin/env bash
# Stages a CUDA build for the GPU machine: the binaries and ctest's files of BUILD_DIR
# (default build/) copied into .gpu/build (ignored by git; carried by the device tool),
# so that there `ln -s .gpu/build build` gives ctest the tree it was configured with.
# usage: launch/stage_gpu.sh            (after launch/build.sh with nvcc present)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
grep -q "ZINC_CUDA:BOOL=ON" "$build/CMakeCache.txt" || { echo "stage_gpu: $build is not a CUDA build" >&2; exit 1; }
grep -qx "/.gpu/" "$root/.git/info/exclude" 2>/dev/null || echo "/.gpu/" >>"$root/.git/info/exclude"
dst=$root/.gpu/build
rm -rf "$dst"
mkdir -p "$dst"
cd "$build"
find . -name "CTestTestfile.cmake" -o -path "./tests/*_include-*.cmake" -o -path "./tests/*_tests-*.cmake" |
  while read -r f; do mkdir -p "$dst/$(dirname "$f")"; cp "$f" "$dst/$f"; done
# Stripped: the device tool carries at most 64 MiB with the working tree, and the CUDA
# fat binaries with symbols came to 38 MiB. The MPI test binary and the examples' tool
# stay here (nothing labelled gpu uses them); STAGE_ALL=1 copies them too.
bins="runtime/zinc tests/zinc_tests tests/zinc_gpu_tests"
[ "${STAGE_ALL:-0}" = 1 ] && bins="$bins tests/zinc_mpi_tests examples/blob_sizes"
for b in $bins; do
  [ -f "$b" ] && { mkdir -p "$dst/$(dirname "$b")"; cp "$b" "$dst/$b"; strip "$dst/$b"; }
done
# Folders ctest descends into without tests of their own still need their (empty) file.
sed -n 's/^subdirs("\(.*\)")$/\1/p' "$dst/CTestTestfile.cmake" | while read -r d; do
  mkdir -p "$dst/$d"; [ -f "$dst/$d/CTestTestfile.cmake" ] || : >"$dst/$d/CTestTestfile.cmake"
done
# The commit the binaries were built from (the device machine's copy of .git may be older).
{ git -C "$root" rev-parse --short HEAD; git -C "$root" status --porcelain --untracked-files=no | grep -q . && echo "(with uncommitted changes)"; } >"$dst/COMMIT" || true
du -sh "$dst"
