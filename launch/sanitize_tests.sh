#!/usr/bin/env bash
# CI's sanitized pass: builds zinc with AddressSanitizer + UBSan (ZINC_SANITIZE; the
# system compiler, RelWithDebInfo) into SAN_BUILD_DIR (default build-asan/) and runs every
# test there with ctest, as launch/run_tests.sh does for the plain build. CPU only
# (-DZINC_CUDA=OFF): CI has no GPU, so no CUDA code would run, and nvcc doubles the build.
# Any ASan or UBSan report fails its test. Leaks are checked in the in-process tests (unit,
# golden); the processes that Open MPI starts or initialises (tests/cli, tests/mpi) run with
# leak checking off: Open MPI and its components leave thousands of allocations at exit,
# from components it has unloaded by then, which LeakSanitizer can neither attribute nor
# suppress without a full unwind at every malloc (7x the run time). The suppressions
# (tests/sanitizers/lsan.supp) cover the libraries the in-process tests load.
#   bash launch/sanitize_tests.sh [ctest arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export BUILD_DIR=${SAN_BUILD_DIR:-$root/build-asan}
export ZINC_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DZINC_SANITIZE=ON -DZINC_CUDA=OFF"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0}
asan=${ASAN_OPTIONS:-abort_on_error=1}
ASAN_OPTIONS="$asan:detect_leaks=1" bash "$root/launch/run_tests.sh" -E '^(cli|mpi)\.' "$@"
ASAN_OPTIONS="$asan:detect_leaks=0" bash "$root/launch/run_tests.sh" -R '^(cli|mpi)\.' "$@"
