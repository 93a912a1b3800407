#!/usr/bin/env bash
# README command 1: build, then generate text with the bundled trained model on 2 MPI
# ranks: ZeRO-3 shards of NF4 weights kept on each rank's CPU tier and all-gathered layer
# by layer, text prompts through zinc's own tokenizer, the metrics table at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/launch/build.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
model="$root/examples/models/austen-melville-6m"
echo "zinc: a 6.3M-parameter LLaMA trained on Jane Austen and Moby-Dick ($model/README.md)"
mpirun -np 2 --oversubscribe --bind-to none "$build/runtime/zinc" generate --model "$model" \
  --prompts-file "$root/examples/prompts/example.txt" --max-new-tokens 40 \
  --quant nf4 --group-size 16 --offload cpu --batch-size 4 \
  --metrics-json "$build/example_metrics.json" "$@"
echo "metrics JSON: $build/example_metrics.json"
