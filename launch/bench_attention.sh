#!/usr/bin/env bash
# CPU attention over a host-memory KV cache vs the host's read bandwidth
# (goal >= 70%), with the settings of launch/results/attention-cpu-*.md. Builds
# nothing: give it a built zinc binary.
#   usage: launch/bench_attention.sh [ZINC (build/runtime/zinc)] [OUT.json (attention.json)]
# Runs `zinc attnbench` (MHA: B 8, H 32, hd 128, 2048 keys, f32/f16/int8/int4) with every
# thread count in THREADS (default "0 1": all cores, then one core), then a grouped-query
# shape (KVH 8, 4096 keys) on all cores. The first run writes OUT.json, the others
# OUT.threads-N.json and OUT.gqa.json next to it; the tables go to stdout.
# Environment overrides: THREADS, BATCH, CONTEXT, REPEAT, BANDWIDTH_BYTES, ISA (e.g.
# auto,avx2: one row per instruction-set cap).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
Z=${1:-$root/build/runtime/zinc}
out=${2:-attention.json}
[ -x "$Z" ] || { echo "bench_attention.sh: no zinc binary at $Z (build first)" >&2; exit 1; }
threads=${THREADS:-0 1}
common="--batch ${BATCH:-8} --heads 32 --head-dim 128 --group-size 64 --repeat ${REPEAT:-7} --bandwidth-bytes ${BANDWIDTH_BYTES:-1GiB}${ISA:+ --isa $ISA}"
base=${out%.json}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%FT%TZ)"
first=1
for t in $threads; do
  if [ $first = 1 ]; then json=$out; first=0; else json=$base.threads-$t.json; fi
  echo
  echo "\$ zinc attnbench --threads $t --context ${CONTEXT:-2048} $common --json $(basename "$json")"
  # shellcheck disable=SC2086
  "$Z" attnbench --threads "$t" --context "${CONTEXT:-2048}" $common --json "$json"
done
echo
echo "\$ zinc attnbench --threads 0 --kv-heads 8 --context 4096 $common --json $(basename "$base").gqa.json"
# shellcheck disable=SC2086
"$Z" attnbench --threads 0 --kv-heads 8 --context 4096 $common --json "$base.gqa.json"
