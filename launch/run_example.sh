#!/usr/bin/env bash
# README command 1: build, then generate on the bundled example model with 2 MPI ranks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/launch/build.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
model="$root/examples/models/tiny-llama-random"
echo "NOTE: the bundled example is a small RANDOM-INIT LLaMA checkpoint (no training):"
echo "      its tokens are meaningless. A trained model and text prompts arrive with the"
echo "      tokenizer issue. See $model/README.md."
mpirun -np 2 --oversubscribe "$build/runtime/zinc" generate --model "$model" \
  --prompts-file "$root/examples/prompts/example_ids.txt" --max-new-tokens 24 --batch-size 4 \
  --metrics-json "$build/example_metrics.json" "$@"
echo "metrics JSON: $build/example_metrics.json"
