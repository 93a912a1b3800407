#!/usr/bin/env bash
# CPU attention over a host-memory KV cache vs the host's read bandwidth
# (goal >= 70%), with the settings of launch/results/attention-cpu-*.md. Builds
# nothing: give it a built zinc binary.
#   usage: launch/bench_attention.sh [ZINC (build/runtime/zinc)] [OUT.json (attention.json)]
# Runs `zinc attnbench` (MHA: B 8, H 32, hd 128, 2048 keys, f32/f16/int8/int4) with every
# thread count in THREADS (default "0 1": all cores, then one core), then a grouped-query
# shape (KVH 8, 4096 keys) on all cores. With REAL=1, then the real decode shapes on all
# cores: OPT-30B (H 56 = KVH 56, 1024 keys) and LLaMA-2-70B (H 64, KVH 8, 2048 keys), both
# batch 96 (REAL_BATCH), f16/int8/int4 (KV read per step: 2.8 / 1.5 / 0.8 GB for OPT-30B,
# 0.8 / 0.43 / 0.23 GB for LLaMA-2-70B).
# ISA (default auto) is attnbench's --isa list: e.g. ISA=avx2,avx512,avx512-vnni times each
# storage under each instruction-set cap in turn, one row each. The first run writes
# OUT.json, the others OUT.threads-N.json, OUT.gqa.json, OUT.opt30b.json, OUT.llama70b.json
# next to it; the tables go to stdout.
# Environment overrides: THREADS, BATCH, CONTEXT, REPEAT, BANDWIDTH_BYTES, ISA, REAL,
# REAL_BATCH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
Z=${1:-$root/build/runtime/zinc}
out=${2:-attention.json}
[ -x "$Z" ] || { echo "bench_attention.sh: no zinc binary at $Z (build first)" >&2; exit 1; }
threads=${THREADS:-0 1}
isa=${ISA:-auto}
common="--head-dim 128 --group-size 64 --repeat ${REPEAT:-7} --bandwidth-bytes ${BANDWIDTH_BYTES:-1GiB} --isa $isa"
mha="--batch ${BATCH:-8} --heads 32 $common"
base=${out%.json}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%FT%TZ)"
echo "cpu flags: $(grep -o -w 'avx2\|avx512f\|avx512bw\|avx512vl\|avx512dq\|avx512_vnni\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
run() {  # run JSON ARGS...: prints the command, then runs it
  local json=$1; shift
  echo
  echo "\$ zinc attnbench $* --json $(basename "$json")"
  "$Z" attnbench "$@" --json "$json"
}
first=1
for t in $threads; do
  if [ $first = 1 ]; then json=$out; first=0; else json=$base.threads-$t.json; fi
  # shellcheck disable=SC2086
  run "$json" --threads "$t" --context "${CONTEXT:-2048}" $mha
done
# shellcheck disable=SC2086
run "$base.gqa.json" --threads 0 --kv-heads 8 --context 4096 $mha
if [ "${REAL:-0}" = 1 ]; then
  rb=${REAL_BATCH:-96}
  # shellcheck disable=SC2086
  run "$base.opt30b.json" --threads 0 --batch "$rb" --heads 56 --context 1024 --kv-quant f16,int8,int4 $common
  # shellcheck disable=SC2086
  run "$base.llama70b.json" --threads 0 --batch "$rb" --heads 64 --kv-heads 8 --context 2048 --kv-quant f16,int8,int4 $common
fi
