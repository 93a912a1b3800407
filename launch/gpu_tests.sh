#!/usr/bin/env bash
# On the GPU machine (docs/DESIGN.md, "The GPU machines"): the whole test suite with the
# GPU label included, then the CUDA path end to end and the first numbers. Run from the
# repository root after launch/stage_gpu.sh staged .gpu/build here; logs go to OUT_DIR.
# usage (there): bash launch/gpu_tests.sh OUT_DIR [quick]
set -uo pipefail
root=$(pwd)
out=${1:?usage: gpu_tests.sh OUT_DIR [quick]}
mkdir -p "$out"
# ctest's files name /work/main/build/...: point those paths at this copy.
[ -e /work/main ] || { mkdir -p /work && ln -s "$root" /work/main; }
[ -e "$root/build" ] || ln -s "$root/.gpu/build" "$root/build"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
Z=$root/build/runtime/zinc
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc; free -g | head -2
  "$Z" --version; echo "built from $(tr '\n' ' ' <"$root/.gpu/build/COMMIT" 2>/dev/null)"; } >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

echo "== gpu tests (ctest -L gpu)"
(cd "$root/build" && ctest -L gpu --output-on-failure -j1 --timeout 600) >"$out/ctest-gpu.log" 2>&1
tail -n 15 "$out/ctest-gpu.log"
"$root/build/tests/zinc_gpu_tests" >"$out/gpu-tests.log" 2>&1  # the same, with the printed reports
grep "gpu-report" "$out/gpu-tests.log" | sort -u | head -40
tail -n 3 "$out/gpu-tests.log"
echo "== op table with the CUDA rows (zinc_tests [ops])"
"$root/build/tests/zinc_tests" "[ops]" >"$out/ops.log" 2>&1
tail -n 4 "$out/ops.log"
if [ "${2:-}" != quick ]; then
  echo "== the whole suite (ctest)"
  (cd "$root/build" && ctest -LE gpu -j8 --timeout 600) >"$out/ctest-all.log" 2>&1
  tail -n 6 "$out/ctest-all.log"
fi

echo "== CLI: cuda vs cpu tokens (fp32) over tiers and KV placement"
M=$root/tests/fixtures/llama_gqa
P=(--prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --max-new-tokens 8)
work=$(mktemp -d)
"$Z" convert --model "$M" --out "$work/m.zinc.h5" --quant int8 --group-size 32 >/dev/null 2>&1
"$Z" generate --model "$work/m.zinc.h5" "${P[@]}" --backend cpu >"$work/cpu.txt" 2>&1
for run in "--offload cpu" "--offload nvme" "--offload none" "--offload cpu --kv-offload" \
           "--offload nvme --kv-offload --kv-quant int8" "--offload cpu --prefetch-depth 3 --resident-blobs 2"; do
  # shellcheck disable=SC2086
  mpirun --bind-to none -np 1 "$Z" generate --model "$work/m.zinc.h5" "${P[@]}" --backend cuda --dtype fp32 $run >"$work/g.txt" 2>&1
  if cmp -s <(grep "output:" "$work/cpu.txt") <(grep "output:" "$work/g.txt"); then r=same; else r=DIFFER; fi
  [[ "$run" == *int8* ]] && r="$r (int8 KV: compared for information)"
  echo "cuda $run: tokens $r as the cpu backend"
done | tee "$out/cli.txt"
tail -n 12 "$work/g.txt" >>"$out/cli.txt"

echo "== device ceilings and dequantize kernels (zinc devbench, fp16 and bf16 output)"
for dt in fp16 bf16; do
  echo "\$ zinc devbench --backend cuda --dtype $dt --json devbench-$dt.json" >"$out/devbench-$dt.txt"
  "$Z" devbench --backend cuda --dtype "$dt" --json "$out/devbench-$dt.json" >>"$out/devbench-$dt.txt" 2>&1
  cat "$out/devbench-$dt.txt"
done

echo "== first numbers: dummy LLaMA-2-70B NF4 g64, weights pinned on the CPU, prompt 512, gen 32"
python3 - "$work/p512.txt" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for _ in range(64):
        f.write(",".join(str(random.randrange(3, 32000)) for _ in range(512)) + "\n")
PY
for bs in ${BENCH_BATCHES-16 64}; do  # BENCH_BATCHES="" runs none
  head -n $bs "$work/p512.txt" >"$work/p$bs.txt"
  cmd=(mpirun --bind-to none -np 1 "$Z" generate --dummy llama-2-70b --quant nf4 --group-size 64 --offload cpu --backend cuda
       --prompt-ids-file "$work/p$bs.txt" --max-new-tokens 32 --quiet --metrics-json "$out/llama70b-nf4-b$bs.json")
  echo "\$ ${cmd[*]}" | sed "s|$root/||g; s|$work/||g" >"$out/llama70b-nf4-b$bs.txt"
  timeout "${BENCH_TIMEOUT:-420}" "${cmd[@]}" >>"$out/llama70b-nf4-b$bs.txt" 2>&1 || echo "exit $?" >>"$out/llama70b-nf4-b$bs.txt"
  grep -E "prefill|decode|peak|weight stream|pipeline|exit" "$out/llama70b-nf4-b$bs.txt"
done
rm -rf "$work"
