#!/usr/bin/env bash
# ZeRO-3 benchmark on the CPU backend: `zinc convert` throughput (GB/s of
# output), load time of a dummy llama-2-13b shape, and the bytes each all-gather moves
# per layer per format. Writes launch/results/zero3-cpu-DATE.md (+ JSON next to it).
#   usage: launch/bench_zero3.sh [WORK_DIR]     (WORK_DIR needs ~3 GB; default /tmp/zinc-bench)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
work=${1:-/tmp/zinc-bench}
bash "$root/launch/build.sh" >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
Z="$build/runtime/zinc"
day=$(date +%F)
out="$root/launch/results/zero3-cpu-$day.md"
mkdir -p "$work"

run() {  # prints the command line, then runs it
  echo "\$ $*" | sed "s|$root/||g; s|$build/||g" >>"$out.tmp"
  "$@"
}

: >"$out.tmp"
python3 "$root/launch/make_synthetic_checkpoint.py" "$work/llama-1b" >/dev/null
{
  echo "## zinc convert (synthetic LLaMA, hidden 2048, 16 layers, fp16 safetensors)"
  for q in nf4 int8; do
    rm -f "$work/m.zinc.h5"
    echo '```'
    run "$Z" convert --model "$work/llama-1b" --out "$work/m.zinc.h5" --quant $q --group-size 64 2>/dev/null
    echo '```'
  done
  echo
  echo "## Load and one forward of dummy:llama-2-13b (nf4, group 64), 1 and 2 ranks"
  for np in 1 2; do
    echo '```'
    run mpirun -np $np --oversubscribe --bind-to none "$Z" generate --dummy llama-2-13b --quant nf4 \
      --prompt-ids 1,2,3,4,5,6,7,8 --max-new-tokens 2 --metrics-json "$work/13b-np$np.json"
    echo '```'
    cp "$work/13b-np$np.json" "$root/launch/results/zero3-cpu-$day-13b-np$np.json"
  done
  echo
  echo "## Bytes per all-gather (one decoder layer blob) and per forward pass, group 64"
  echo '```'
  run "$build/examples/blob_sizes" 64
  echo '```'
} >"$out.body" 2>&1
{
  echo "# ZeRO-3 on the CPU backend — $day"
  echo
  echo "Machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(free -g | awk '/Mem:/{print $2}') GiB;"
  echo "commit $(git -C "$root" rev-parse --short HEAD); made by launch/bench_zero3.sh."
  echo
  echo "Commands, in order:"
  echo '```'
  cat "$out.tmp"
  echo '```'
  echo
  cat "$out.body"
} >"$out"
rm -f "$out.tmp" "$out.body"
echo "wrote $out"
