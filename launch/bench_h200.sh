#!/usr/bin/env bash
# Issue 11's benchmarks on the one-GPU H200 machine (docs/DESIGN.md, "The GPU machines"):
# `zinc bench` over the target configurations, one section per argument, each writing
# SECTION.txt (the command line and the table), SECTION.json and SECTION.csv to OUT_DIR.
# Run from the repository root after launch/stage_gpu.sh staged .gpu/build here.
# usage (there): bash launch/bench_h200.sh OUT_DIR SECTION...
#   sections: opt30b-int4 opt30b-nf4 kv-offload lanes llama70b baseline-fp16 nvme plan convert attn
#   (plan: PLAN_MODELS "shape:quant ..." with --plan auto --batch-size auto; with GEN=32
#    WARMUP=0 a 175B row takes about 2 minutes, the five rows about 6: run G, BENCH.md)
#   (nvme: a one-step run streams 16 GB at the disk's ~1.8 GB/s, so use GEN=4 WARMUP=0)
#   (lanes: 8 runs, about 8 minutes with WARMUP=0)
# env: LOOPS (timed runs per batch, default 1), WARMUP (default 1), GEN (gen len, 32),
#      EXTRA (more bench options for every run), TAG (appended to the file names),
#      KV_OVERLAPS (kv-offload: the --kv-overlap values to run, default "auto"; "auto off" compares)
set -uo pipefail
root=$(pwd)
out=${1:?usage: bench_h200.sh OUT_DIR SECTION...}
shift
mkdir -p "$out"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
Z=$root/.gpu/build/runtime/zinc
LOOPS=${LOOPS:-1} WARMUP=${WARMUP:-1} GEN=${GEN:-32}
common=(--prompt-len 512 --gen-len "$GEN" --loops "$LOOPS" --warmup "$WARMUP" --backend cuda --quiet)

# bench NAME ARGS...: one `zinc bench` run, its command line first in NAME.txt.
bench() {
  local name=$1${TAG:-}
  shift
  # shellcheck disable=SC2206
  local cmd=(mpirun --bind-to none -np 1 "$Z" bench "$@" "${common[@]}" ${EXTRA:-} --json "$out/$name.json" --csv "$out/$name.csv")
  echo "\$ ${cmd[*]}" | sed "s|$root/.gpu/||g; s|$out/||g" >"$out/$name.txt"
  local t0=$SECONDS
  timeout "${BENCH_TIMEOUT:-400}" "${cmd[@]}" >>"$out/$name.txt" 2>&1 || echo "exit $?" >>"$out/$name.txt"
  echo "($((SECONDS - t0)) s wall)" >>"$out/$name.txt"
  echo "== $name"
  grep -v '^#' "$out/$name.txt" | tail -n +2
}

opt=(--model dummy:opt-30b --group-size 64 --offload cpu)
for section in "$@"; do
  case $section in
    opt30b-int4) bench opt30b-int4 "${opt[@]}" --quant int4 --batch-size "${BATCHES:-16,32,64,128}" ;;
    opt30b-nf4) bench opt30b-nf4 "${opt[@]}" --quant nf4 --batch-size "${BATCHES:-128}" ;;
    kv-offload)
      for kq in ${KV_QUANTS:-f16 int8 int4}; do
        for ov in ${KV_OVERLAPS:-auto}; do  # auto: decode micro-batches as lanes; off: one after another
          suffix=; [ "$ov" != auto ] && suffix=-overlap-$ov
          bench "kv-offload-$kq$suffix" "${opt[@]}" --quant int4 --kv-offload --kv-quant "$kq" --kv-overlap "$ov" \
            --batch-size "${KV_BATCHES:-96}"
        done
      done ;;
    lanes)  # issue 11 target 3: the lanes' threads, a trace, and the largest host-KV batch
      for t in ${LANE_THREADS:-16 15 14}; do
        bench "lanes-int4-b96-threads$t" "${opt[@]}" --quant int4 --kv-offload --kv-quant int4 --batch-size 96 \
          --threads "$t"
      done
      bench lanes-int4-b96-trace "${opt[@]}" --quant int4 --kv-offload --kv-quant int4 --batch-size 96 \
        --trace "$out/lanes-int4-b96.trace.json"
      for ov in on off; do  # f16 KV was 881 ms a step without lanes, 969 with them (2 slots)
        bench "lanes-f16-b96-overlap-$ov" "${opt[@]}" --quant int4 --kv-offload --kv-quant f16 --batch-size 96 \
          --kv-overlap "$ov"
      done
      # int4 KV is ~210 MB per sequence at 544 positions: b288 is ~60 GB beside 17 GB of pinned weights.
      bench lanes-int4-sweep "${opt[@]}" --quant int4 --kv-offload --kv-quant int4 --batch-size "${LANE_BATCHES:-96,192,288}" ;;
    llama70b)
      for bs in ${LLAMA_BATCHES:-64 128}; do
        bench "llama70b-nf4-budget48-b$bs" --model dummy:llama-2-70b --quant nf4 --group-size 64 --offload cpu \
          --gpu-memory-budget 48GiB --batch-size "$bs"
      done ;;
    baseline-fp16)
      bench opt30b-fp16-streamed --model dummy:opt-30b --quant none --zero --offload cpu --batch-size "${BATCHES:-128}"
      bench opt30b-fp16-resident --model dummy:opt-30b --quant none --offload none --batch-size "${BATCHES:-128}" ;;
    nvme)  # target 6: OPT-30B NF4 read in place from a store on this machine's disk
      store=${STORE_DIR:-/tmp}/opt30b-nf4.zinc.h5
      [ -f "$store" ] || { echo "\$ zinc convert --model dummy:opt-30b --quant nf4 --out $store";
                           "$Z" convert --model dummy:opt-30b --quant nf4 --group-size 64 --out "$store"; } \
        >"$out/nvme-convert.txt" 2>&1
      tail -n 1 "$out/nvme-convert.txt"
      { echo "\$ zinc iobench $store --repeat 2"; "$Z" iobench "$store" --repeat 2; } >"$out/nvme-iobench.txt" 2>&1
      cat "$out/nvme-iobench.txt"
      for hb in ${NVME_HOST_BUDGETS:-0 8GiB}; do
        budget=(); [ "$hb" != 0 ] && budget=(--cpu-memory-budget "$hb")
        bench "nvme-opt30b-nf4-host$hb" --model "$store" --offload nvme "${budget[@]}" --batch-size "${BATCHES:-64}"
      done ;;
    plan)  # issue 12: the planner's own batch, KV and placement under a 48 GiB budget
      for m in ${PLAN_MODELS:-opt-30b:int4 llama-2-70b:nf4 opt-66b:nf4 opt-175b:nf4 bloom-176b:nf4}; do
        bench "plan-${m%%:*}-${m##*:}-budget48" --model "dummy:${m%%:*}" --quant "${m##*:}" --group-size 64 \
          --gpu-memory-budget 48GiB --plan auto --batch-size auto --kv-quant auto
      done ;;
    convert)  # issue 12: zinc convert's input rate on this host (target >= 1 GB/s), OPT-30B-shaped
      # CONVERT_LAYERS (default 12, 15 GB of fp16): the whole 48 layers are 60 GB, more than
      # the one-GPU machine's 64 GiB disk holds beside the nvme section's store.
      nl=${CONVERT_LAYERS:-12}
      ck=${STORE_DIR:-/tmp}/opt30b-hf-$nl
      [ -d "$ck" ] || python3 "$root/launch/make_opt_checkpoint.py" 7168 "$nl" 28672 "$ck" >/dev/null
      { echo "\$ python3 launch/make_opt_checkpoint.py 7168 $nl 28672 opt30b-hf-$nl; $(du -sh "$ck" | cut -f1) of fp16";
        echo "\$ zinc convert --model opt30b-hf-$nl --quant nf4 --out opt30b-hf-$nl.nf4.zinc.h5 --force";
        "$Z" convert --model "$ck" --quant nf4 --out "$ck.nf4.zinc.h5" --force 2>&1 | tr '\r' '\n' | tail -n 3; } \
        >"$out/convert.txt" 2>&1
      rm -f "$ck.nf4.zinc.h5"
      tail -n 1 "$out/convert.txt" ;;
    attn)
      { echo "\$ zinc attnbench (launch/bench_attention.sh)"; THREADS=0 ISA=${ISA:-auto,avx2} bash "$root/launch/bench_attention.sh" "$Z" "$out/attn.json"; } \
        >"$out/attn.txt" 2>&1
      tail -n 30 "$out/attn.txt" ;;
    *) echo "bench_h200: unknown section '$section'" >&2; exit 2 ;;
  esac
done
