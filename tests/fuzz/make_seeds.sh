#!/usr/bin/env bash
# Remakes tests/fuzz/seeds/ from tests/fixtures and examples/models: the text seeds with
# make_seeds.py, the store seeds by converting fixtures with `zinc convert` (BUILD_DIR,
# default build/) and writing their metadata with zinc_store_seed (SAN_BUILD_DIR, default
# build-san/: launch/build_sanitized.sh). The seeds are committed; run this only when the
# fixtures change.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
fuzz_build=${SAN_BUILD_DIR:-$root/build-san}
seeds=$root/tests/fuzz/seeds
rm -rf "$seeds"
python3 "$root/tests/fuzz/make_seeds.py" "$seeds"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$seeds/store_meta"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for spec in llama_gqa:none:64 llama_tied:nf4:16 opt_postln_proj:int8:16 bloom_alibi:int4:32 \
            opt_preln:int8-asym:16 llama_mha:int4-sym:16; do
  IFS=: read -r model quant group <<<"$spec"
  store="$tmp/$model.zinc.h5"
  "$build/runtime/zinc" convert --model "$root/tests/fixtures/$model" --out "$store" \
    --quant "$quant" --group-size "$group" >/dev/null
  "$fuzz_build/tests/fuzz/zinc_store_seed" "$store" >"$seeds/store_meta/$model.$quant"
done
du -sh "$seeds"/*
