#!/usr/bin/env bash
# The sanitized pass (for CI: DESIGN.md section 11): every test (ctest) of the sanitized tree (launch/build_sanitized.sh:
# clang, ASan + UBSan, CPU only; SAN_BUILD_DIR, default build-san/). Any ASan or UBSan
# report fails its test. Leaks are checked in the in-process tests (unit, golden), with
# tests/sanitizers/lsan.supp for the libraries they load; the processes that Open MPI starts
# or initialises (tests/cli, tests/mpi) run with leak checking off: Open MPI leaves
# thousands of allocations at exit, many from components it has unloaded by then, which
# LeakSanitizer can neither attribute nor suppress without a full unwind at every malloc
# (7x the run time).
#   bash launch/sanitize_tests.sh [ctest arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SAN_BUILD_DIR:-$root/build-san}
bash "$root/launch/build_sanitized.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0}
asan=${ASAN_OPTIONS:-abort_on_error=1}
cd "$build"
ASAN_OPTIONS="$asan:detect_leaks=1" ctest --output-on-failure -j2 -E '^(cli|mpi)\.' "$@"
ASAN_OPTIONS="$asan:detect_leaks=0" ctest --output-on-failure -j2 -R '^(cli|mpi)\.' "$@"
