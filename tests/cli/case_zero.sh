# ZeRO-3 with quantized shards: 1..4 ranks give the one-process tokens for each format;
# a store written once loads at any world size with the same tokens; bad stores and bad
# options are clear errors on every rank, with no hang.
M="$FIXTURES/llama_gqa"   # hidden 64, intermediate 96: group 32 divides every row
P=(--prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --max-new-tokens 6)
for q in none int8 int4 nf4; do
  run_ok "$TMP/$q.1" "$ZINC" generate --model "$M" "${P[@]}" --quant $q --group-size 32 --zero
  for np in 2 3 4; do
    run_ok "$TMP/$q.$np" mpirun -np $np "$ZINC" generate --model "$M" "${P[@]}" --quant $q --group-size 32
    same_outputs "$TMP/$q.1" "$TMP/$q.$np"
  done
done
# --quant none through ZeRO shards equals the resident path (which matches transformers).
run_ok "$TMP/resident" "$ZINC" generate --model "$M" "${P[@]}"
same_outputs "$TMP/resident" "$TMP/none.3"

# The store: convert on one rank, describe, load at 1 and 3 ranks.
run_ok "$TMP/convert" "$ZINC" convert --model "$M" --out "$TMP/m.zinc.h5" --quant nf4 --group-size 32
[ -f "$TMP/m.zinc.h5" ] && [ ! -e "$TMP/m.zinc.h5.tmp" ] || fail "convert left no store or a temp file"
run_ok "$TMP/info" "$ZINC" info "$TMP/m.zinc.h5" --blobs
grep -q "nf4" "$TMP/info" && grep -q "layer.0001" "$TMP/info" || fail "info lacks the format or blobs"
run_ok "$TMP/store.1" "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}"
run_ok "$TMP/store.3" mpirun -np 3 "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}"
same_outputs "$TMP/nf4.1" "$TMP/store.1"
same_outputs "$TMP/nf4.1" "$TMP/store.3"
expect_exit 1 "holds nf4 weights" "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}" --quant int8
expect_exit 1 "--group-size 32" "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}" --group-size 64

# The NVMe tier: shards read from the store in place (io_uring, O_DIRECT) at every use.
run_ok "$TMP/nvme.1" "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}" --offload nvme --nvme-block-size 8KiB --nvme-queue-depth 2
run_ok "$TMP/nvme.2" mpirun -np 2 "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}" --offload nvme
same_outputs "$TMP/nf4.1" "$TMP/nvme.1"
same_outputs "$TMP/nf4.1" "$TMP/nvme.2"
grep -q "NVMe tier" "$TMP/nvme.1" || fail "no NVMe tier line"
expect_exit 1 "reads the weights in place from a zinc store" "$ZINC" generate --model "$M" "${P[@]}" --offload nvme
expect_exit 1 "not a tier" "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}" --offload gpu
expect_exit 1 "nvme-block-size" "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}" --offload nvme --nvme-block-size 1000

# A flipped byte inside layer 1's blob: the CRC check names it, on 1 and on 2 ranks.
cp "$TMP/m.zinc.h5" "$TMP/bad.zinc.h5"
off=$(grep 'layer.0001' "$TMP/info" | sed 's/.*file offset //')
printf '\xff\xff\xff\xff' | dd of="$TMP/bad.zinc.h5" bs=1 seek=$((off + 100)) conv=notrunc status=none
expect_exit 1 "CRC-32C" "$ZINC" generate --model "$TMP/bad.zinc.h5" "${P[@]}"
expect_exit 1 "CRC-32C" mpirun -np 2 "$ZINC" generate --model "$TMP/bad.zinc.h5" "${P[@]}"
expect_exit 1 "CRC-32C" mpirun -np 2 "$ZINC" generate --model "$TMP/bad.zinc.h5" "${P[@]}" --offload nvme
# A truncated store.
cp "$TMP/m.zinc.h5" "$TMP/short.zinc.h5"
truncate -s $(( $(stat -c %s "$TMP/m.zinc.h5") / 2 )) "$TMP/short.zinc.h5"
expect_exit 1 "short.zinc.h5" mpirun -np 2 "$ZINC" generate --model "$TMP/short.zinc.h5" "${P[@]}"
expect_exit 1 "not" "$ZINC" info "$FIXTURES/llama_gqa/config.json"

# A group size that does not divide a row names the tensor (intermediate 160 % 64 != 0).
expect_exit 1 "not a multiple of the group size" mpirun -np 2 "$ZINC" generate --model "$FIXTURES/llama_mha" "${P[@]}" --quant nf4 --group-size 64
expect_exit 1 "unknown" "$ZINC" generate --model "$M" "${P[@]}" --quant int3

# Dummy shapes: generated per rank; same tokens at 1 and 2 ranks.
D=(--prompt-ids 1,2,3 --prompt-ids 4,5 --max-new-tokens 3 --quant nf4)
for shape in tiny-opt tiny-bloom; do
  run_ok "$TMP/$shape.1" "$ZINC" generate --dummy $shape "${D[@]}"
  run_ok "$TMP/$shape.2" mpirun -np 2 "$ZINC" generate --model dummy:$shape "${D[@]}"
  same_outputs "$TMP/$shape.1" "$TMP/$shape.2"
done
expect_exit 1 "not a known shape" "$ZINC" generate --model dummy:gpt-5 "${D[@]}"

# Lockstep with an early EOS: the llama_mha fixture's prompts, one per rank at np 3. Rank 0's
# sequence stops at step 5 (EOS 152) but keeps joining the gathers until the others finish;
# every rank's tokens equal transformers' generate() (tests/fixtures/manifest.json).
E=(--prompt-ids 81,9,56,206,40,215,219 --prompt-ids 34,208,309,180
   --prompt-ids 174,139,144,43,67,274,44,315,21,319 --max-new-tokens 16 --zero)
run_ok "$TMP/eos.3" mpirun -np 3 "$ZINC" generate --model "$FIXTURES/llama_mha" "${E[@]}"
grep -q '^\[1\] output: 186 261 265 218 84 152  (eos)$' "$TMP/eos.3" || fail "sequence 1: $(cat "$TMP/eos.3")"
grep -q '^\[2\] output: 6 20 134 3 189 106 134 257 111 3 202 177 46 232 12 276$' "$TMP/eos.3" || fail "sequence 2"
grep -q '^\[3\] output: 89 202 202 195 291 307 142 27 129 109 125 202 205 179 112 307$' "$TMP/eos.3" || fail "sequence 3"

# A budget too small for one layer fails before any weight is made or read (a 70B shape
# would need ~18 GiB of shards per rank here): the message names the minimum.
expect_exit 1 "is too small: the minimum is" mpirun -np 2 "$ZINC" generate --dummy llama-2-70b --quant nf4 --prompt-ids 1,2 --gpu-memory-budget 1GiB

# convert --model dummy:SHAPE writes the random weights --model dummy:SHAPE runs on, with a
# config.json that loads back: the store's tokens equal the dummy's, on every tier.
D=(--prompt-ids 5,6,7 --prompt-ids 9,10 --max-new-tokens 5)
for shape in tiny-llama tiny-opt tiny-bloom; do
  run_ok "$TMP/dconv.$shape" "$ZINC" convert --model dummy:$shape --out "$TMP/$shape.zinc.h5" --quant int4 --group-size 64
  grep -q "random weights of dummy:$shape" "$TMP/dconv.$shape" || fail "convert dummy:$shape did not say what it wrote"
  run_ok "$TMP/d.$shape" "$ZINC" generate --model dummy:$shape --quant int4 --group-size 64 "${D[@]}"
  run_ok "$TMP/s.$shape" "$ZINC" generate --model "$TMP/$shape.zinc.h5" "${D[@]}"
  run_ok "$TMP/n.$shape" mpirun -np 2 "$ZINC" generate --model "$TMP/$shape.zinc.h5" "${D[@]}" --offload nvme
  same_outputs "$TMP/d.$shape" "$TMP/s.$shape"
  same_outputs "$TMP/d.$shape" "$TMP/n.$shape"
done
expect_exit 1 "is not a known shape" "$ZINC" convert --model dummy:no-such --out "$TMP/x.zinc.h5"
