#!/usr/bin/env bash
# README command 2: set up, build, and run every test with CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/launch/build.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# A single-node Slurm for the sbatch template's test (root only: its daemons run as root);
# stopped again when the tests end. Where it cannot start, case_slurm.sh fails and says why.
if [ "$(id -u)" -eq 0 ] && command -v slurmctld >/dev/null; then
  export ZINC_REQUIRE_SLURM=1
  slurm_dir=$build/slurm-ci
  if conf=$(bash "$root/launch/slurm/ci/start_local_slurm.sh" "$slurm_dir"); then
    eval "$conf"
    trap 'bash "$root/launch/slurm/ci/start_local_slurm.sh" --stop "$slurm_dir"' EXIT
  fi
fi
cd "$build"
ctest --output-on-failure -j2 "$@"
