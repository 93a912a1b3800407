# The weight pipeline and KV placement: tokens are identical to the all-resident
# run for every combination of weight tier (cpu, nvme), prefetch depth (gather slots),
# resident fraction (none, some, all) and KV placement (device, host) at 1 and 2 ranks —
# exact on the CPU backend, since every path computes the same fp32 values. Then the
# budget planner (a budget picks the resident blobs; below the minimum is refused before
# loading), ALiBi and tied heads through the host KV path, and quantized host KV caches.
M="$FIXTURES/llama_gqa"   # GQA (4 heads, 2 kv heads), biases, sharded safetensors
P=(--prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --max-new-tokens 6 --batch-size 2)
run_ok "$TMP/convert" "$ZINC" convert --model "$M" --out "$TMP/m.zinc.h5" --quant nf4 --group-size 32
S="$TMP/m.zinc.h5"
run_ok "$TMP/base" "$ZINC" generate --model "$S" "${P[@]}" --offload none
P4=(--prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --prompt-ids 16,17 --max-new-tokens 6)
run_ok "$TMP/base4" "$ZINC" generate --model "$S" "${P4[@]}" --offload none
grep -Eq "^placement: ([0-9]+) of \1 blobs resident" "$TMP/base" || fail "--offload none kept not every blob resident:\n$(cat "$TMP/base")"
for np in 1 2; do
  for tier in cpu nvme; do
    for depth in 1 2 3; do
      for resident in 0 2; do
        for kv in device host; do
          kvflag=(); [ $kv = host ] && kvflag=(--kv-offload)
          out="$TMP/$np.$tier.$depth.$resident.$kv"
          run_ok "$out" mpirun -np $np "$ZINC" generate --model "$S" "${P[@]}" --offload $tier \
            --prefetch-depth $depth --resident-blobs $resident "${kvflag[@]}" --nvme-block-size 8KiB
          grep -q "^placement: $resident of " "$out" || fail "$out: not $resident blobs resident"
          same_outputs "$TMP/base" "$out"
        done
      done
    done
  done
  # NVMe with a host budget: the shards that fit stay pinned in host memory, the rest are read.
  host=64KiB; [ $np = 2 ] && host=40KiB  # the staging ring + about half of this rank's shards
  run_ok "$TMP/$np.mixed" mpirun -np $np "$ZINC" generate --model "$S" "${P[@]}" --offload nvme --cpu-memory-budget $host
  grep -Eq "^placement: 0 of 4 blobs resident \(0 B\), [1-3] in pinned host memory .*, [1-3] on NVMe" "$TMP/$np.mixed" ||
    fail "no host/NVMe mix:\n$(cat "$TMP/$np.mixed")"
  same_outputs "$TMP/base" "$TMP/$np.mixed"
  run_ok "$TMP/$np.none.host" mpirun -np $np "$ZINC" generate --model "$S" "${P[@]}" --offload none --kv-offload
  same_outputs "$TMP/base" "$TMP/$np.none.host"
  # Host-KV decode with the micro-batches as lanes (auto leaves them off on the CPU
  # backend): streamed weights at depth 2 and 3 (lane 0 holds layer l + 1 while lane 1
  # computes l), and depth 1 (one slot: no lanes, said so by the absent lanes line). Four
  # prompts in one round, so every rank has two sequences or more.
  for depth in 1 2 3; do
    out="$TMP/$np.lanes.$depth"
    run_ok "$out" mpirun -np $np "$ZINC" generate --model "$S" "${P4[@]}" --offload cpu --prefetch-depth $depth \
      --kv-offload --kv-overlap on --micro-batch 1
    same_outputs "$TMP/base4" "$out"
    if [ $depth = 1 ]; then ! grep -q "lanes" "$out" || fail "$out: lanes with one weight slot"
    else grep -Eq "decode in [2-4] lanes" "$out" || fail "$out: no lanes:\n$(cat "$out")"; fi
  done
done
if grep -q "lanes" "$TMP/2.cpu.2.0.host"; then fail "--kv-overlap auto ran lanes on the CPU backend"; fi
expect_exit 2 "--kv-overlap must be auto, on or off" "$ZINC" generate --model "$S" "${P[@]}" --kv-offload --kv-overlap yes
grep -q "KV cache: host memory (f32), attention on the CPU" "$TMP/2.nvme.3.2.host" || fail "host KV not reported"
grep -q "pipeline (rank 0, 3 slots)" "$TMP/2.nvme.3.2.host" || fail "pipeline stats missing"

# The planner: the minimum from a run's metrics, then a budget with room for about half
# of the packed weights keeps some blobs resident, and the tokens stay the same.
run_ok "$TMP/metrics" "$ZINC" generate --model "$S" "${P[@]}" --metrics-json "$TMP/m.json"
min=$(grep -o '"minimum_device_bytes": *[0-9]*' "$TMP/m.json" | grep -o '[0-9]*$')
packed=$(grep -o '"packed_bytes": *[0-9]*' "$TMP/m.json" | grep -o '[0-9]*$')
[ -n "$min" ] && [ -n "$packed" ] || fail "metrics JSON lacks the placement: $(cat "$TMP/m.json")"
run_ok "$TMP/budget" "$ZINC" generate --model "$S" "${P[@]}" --gpu-memory-budget $((min + packed / 2))
grep -Eq "^placement: [1-3] of 4 blobs resident" "$TMP/budget" || fail "a half budget kept none or all:\n$(cat "$TMP/budget")"
same_outputs "$TMP/base" "$TMP/budget"
expect_exit 1 "is too small: the minimum is" mpirun -np 2 "$ZINC" generate --model "$S" "${P[@]}" --gpu-memory-budget $((min - 1))
expect_exit 1 "exceed --gpu-memory-budget" "$ZINC" generate --model "$S" "${P[@]}" --offload none --gpu-memory-budget $((min + packed / 2))
expect_exit 2 "add --kv-offload" "$ZINC" generate --model "$S" "${P[@]}" --kv-quant int8
expect_exit 1 "not a KV storage" "$ZINC" generate --model "$S" "${P[@]}" --kv-offload --kv-quant int3
expect_exit 1 "use --offload nvme" "$ZINC" generate --model "$S" "${P[@]}" --cpu-memory-budget 16KiB
expect_exit 2 "--prefetch-depth must be >= 1" "$ZINC" generate --model "$S" "${P[@]}" --prefetch-depth 0
expect_exit 1 "not a tier (none, cpu, nvme)" "$ZINC" generate --model "$S" "${P[@]}" --offload disk

# ALiBi (BLOOM) and a tied head (the head holds the embedding too) through the host KV path.
for fx in bloom_alibi llama_tied opt_preln; do
  run_ok "$TMP/$fx.dev" "$ZINC" generate --model "$FIXTURES/$fx" "${P[@]}" --zero --prefetch-depth 1
  run_ok "$TMP/$fx.host" mpirun -np 2 "$ZINC" generate --model "$FIXTURES/$fx" "${P[@]}" --kv-offload --prefetch-depth 3
  same_outputs "$TMP/$fx.dev" "$TMP/$fx.host"
done

# Quantized host KV caches run and say so (their tokens may differ: the KV is approximate).
for q in f16 int8 int4; do
  run_ok "$TMP/kv.$q" mpirun -np 2 "$ZINC" generate --model "$S" "${P[@]}" --kv-offload --kv-quant $q
  grep -q "KV cache: host memory ($q)" "$TMP/kv.$q" || fail "kv $q not reported"
  [ "$(grep -c 'output:' "$TMP/kv.$q")" -eq 3 ] || fail "kv $q: not 3 outputs"
done

# The two benchmarks run end to end on small inputs (their numbers are not checked here:
# speed is measured by launch/bench_*.sh and committed with its machine).
run_ok "$TMP/iobench" "$ZINC" iobench "$S" --repeat 1 --ranks 2 --nvme-block-size 8KiB --json "$TMP/io.json"
grep -q "tier / raw" "$TMP/iobench" && grep -q '"tier_gbs"' "$TMP/io.json" || fail "iobench output:\n$(cat "$TMP/iobench")"
expect_exit 2 "need --readers >= 1" "$ZINC" iobench "$S" --readers 0
run_ok "$TMP/attn" "$ZINC" attnbench --batch 1 --heads 2 --context 64 --head-dim 64 --repeat 1 \
  --bandwidth-bytes 8MiB --json "$TMP/attn.json"
for st in f32 f16 int8 int4; do grep -q "^$st " "$TMP/attn" || fail "attnbench has no $st row:\n$(cat "$TMP/attn")"; done
grep -q '"read_gbs"' "$TMP/attn.json" || fail "attnbench JSON lacks read_gbs"
expect_exit 2 "unknown KV cache storage" "$ZINC" attnbench --kv-quant int3
expect_exit 2 "not a multiple of --kv-heads" "$ZINC" attnbench --heads 6 --kv-heads 4
# --isa: one row per (storage, cap); scalar runs everywhere, and a cap names what ran
run_ok "$TMP/attn-isa" "$ZINC" attnbench --batch 1 --heads 2 --context 64 --head-dim 64 --repeat 1 \
  --bandwidth-bytes 8MiB --kv-quant f16,int8 --isa scalar,auto --json "$TMP/attn-isa.json"
[ "$(grep -c '^f16 ' "$TMP/attn-isa")" = 2 ] && grep -q '^int8  *scalar ' "$TMP/attn-isa" ||
  fail "attnbench --isa scalar,auto rows:\n$(cat "$TMP/attn-isa")"
grep -q '"isa_cap": "auto"' "$TMP/attn-isa.json" || fail "attnbench JSON lacks isa_cap"
expect_exit 2 "unknown CPU attention instruction set" "$ZINC" attnbench --isa avx1024
