#!/usr/bin/env bash
# Issue 5's measurements on the GPU machine's host (16 cores, its own disk), with the CPU
# backend binary built on the development machine (docs/DESIGN.md, "The GPU machines"):
#   1. CPU attention over a host KV cache vs the host's read bandwidth (zinc attnbench);
#   2. the NVMe tier vs raw O_DIRECT reads of the same store (zinc iobench), 1 and 4 rank
#      shards, one and two read-ahead readers;
#   3. generation through the weight pipeline: tier x prefetch depth x KV placement, with
#      the per-stage busy/wait report and the tokens compared against the first run.
# usage (there): launch/gpu_host_offload.sh ZINC_BINARY OUT_DIR      (WORK: scratch dir)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
Z=$(realpath "$1"); out=$2; work=${WORK:-/tmp/zinc-gpu-host}
mkdir -p "$out" "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
{ echo "date: $(date -u +%FT%TZ)"; echo "cores: $(nproc)"; lscpu | grep -E "Model name|^CPU\(s\)|NUMA node\(s\)"
  free -g | head -2; df -h "$work" | tail -1; } >"$out/machine.txt" 2>&1

echo "== attention" >&2
bash "$root/launch/bench_attention.sh" "$Z" "$out/attention.json" >"$out/attention.txt" 2>&1 || echo "attention failed" >>"$out/attention.txt"

echo "== store" >&2
python3 "$root/launch/make_synthetic_checkpoint.py" "$work/llama-1b" >/dev/null
"$Z" convert --model "$work/llama-1b" --out "$work/m.zinc.h5" --quant nf4 --force >"$out/convert.txt" 2>&1
{
  for args in "--ranks 1" "--ranks 4 --readers 1" "--ranks 4 --readers 2" "--ranks 1 --nvme-block-size 8MiB"; do
    echo "\$ zinc iobench m.zinc.h5 --repeat 5 $args"
    # shellcheck disable=SC2086
    "$Z" iobench "$work/m.zinc.h5" --repeat 5 $args
  done
} >"$out/iobench.txt" 2>&1

echo "== generate" >&2
python3 - "$work/prompts.txt" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for _ in range(16):
        f.write(",".join(str(random.randrange(3, 32000)) for _ in range(64)) + "\n")
PY
{
  first=""
  for run in "cpu 1" "cpu 2" "cpu 4" "nvme 1" "nvme 2" "nvme 4" "cpu 2 --kv-offload" "nvme 2 --kv-offload --kv-quant int8"; do
    set -- $run; tier=$1; depth=$2; shift 2
    tag="$tier-$depth${1:+-kv}${3:+-$3}"
    echo "\$ zinc generate --model m.zinc.h5 --prompt-ids-file prompts.txt --max-new-tokens 8 --threads 16 --offload $tier --prefetch-depth $depth $*"
    "$Z" generate --backend cpu --model "$work/m.zinc.h5" --prompt-ids-file "$work/prompts.txt" --max-new-tokens 8 \
      --threads 16 --offload "$tier" --prefetch-depth "$depth" "$@" --metrics-json "$work/$tag.json" >"$work/$tag.txt" 2>&1
    grep -v "output:\|prompt:" "$work/$tag.txt"
    if [ -z "$first" ]; then first=$tag; elif [ -z "${3:-}" ]; then
      cmp -s <(grep "output:" "$work/$first.txt") <(grep "output:" "$work/$tag.txt") && echo "tokens: same as $first" || echo "tokens: DIFFER from $first"
    fi
    echo
  done
} >"$out/generate.txt" 2>&1
echo "== done" >&2
