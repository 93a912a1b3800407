#!/usr/bin/env bash
# NVMe tier benchmark: read bandwidth of the tier (io_uring O_DIRECT shards of a
# zinc store, CRC-checked) against the raw O_DIRECT bandwidth of the same file, measured
# by the same binary (`zinc iobench`), at 1 and 4 rank-shard layouts, one and two read-ahead
# readers, and two block sizes; raw and tier passes alternate.
# Writes launch/results/nvme-cpu-DATE.md.   usage: launch/bench_nvme.sh [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
work=${1:-/tmp/zinc-bench}
bash "$root/launch/build.sh" >/dev/null
Z="$build/runtime/zinc"
out="$root/launch/results/nvme-cpu-$(date +%F).md"
mkdir -p "$work"
[ -f "$work/llama-1b/model.safetensors" ] || python3 "$root/launch/make_synthetic_checkpoint.py" "$work/llama-1b" >/dev/null
[ -f "$work/m.zinc.h5" ] || "$Z" convert --model "$work/llama-1b" --out "$work/m.zinc.h5" --quant nf4 >/dev/null 2>&1
{
  echo "# NVMe tier vs raw O_DIRECT — $(date +%F)"
  echo
  echo "Machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), disk: $(df -h "$work" | awk 'NR==2{print $1}');"
  echo "commit $(git -C "$root" rev-parse --short HEAD); store: synthetic LLaMA (hidden 2048, 16 layers) in nf4,"
  echo "made by launch/make_synthetic_checkpoint.py and zinc convert. Goal: tier >= 85% of raw."
  for args in "--nvme-block-size 1MiB --ranks 1" "--nvme-block-size 1MiB --ranks 4 --readers 1" \
              "--nvme-block-size 1MiB --ranks 4 --readers 2" "--nvme-block-size 8MiB --ranks 1"; do
    echo
    echo '```'
    echo "\$ zinc iobench m.zinc.h5 --repeat 5 $args"
    # shellcheck disable=SC2086
    "$Z" iobench "$work/m.zinc.h5" --repeat 5 $args
    echo '```'
  done
} >"$out"
echo "wrote $out"
