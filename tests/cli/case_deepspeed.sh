# DeepSpeed ZeRO-Inference's command lines for zinc bench (runtime/cli/deepspeed_args.hpp):
# run_model.py's spellings and a DeepSpeed config become zinc's options; the run header
# says what they became. One real run of a Hub name's dummy shape (facebook/opt-1.3b, int4
# from the config, on the CPU backend), then the refusals, which stop before any load.
cat >"$TMP/ds.json" <<'JSON'
{
  "train_micro_batch_size_per_gpu": 1,
  "fp16": {"enabled": true},
  "zero_optimization": {
    "stage": 3,
    "stage3_prefetch_bucket_size": 100000000,
    "offload_param": {"device": "cpu", "pin_memory": true, "buffer_count": 5}
  },
  "weight_quantization": {"quantized_initialization": {"num_bits": 4, "group_size": 64, "group_dim": 1, "symmetric": false}}
}
JSON
B=(--batch-size 1 --prompt-len 4 --gen-len 2 --loops 1 --warmup 0 --backend cpu --quiet)
run_ok "$TMP/ds" "$ZINC" bench --dummy --model facebook/opt-1.3b --deepspeed-config "$TMP/ds.json" --cpu-offload \
  --pin-memory 0 "${B[@]}" --json "$TMP/ds.out.json"
grep -q "^# model dummy:opt-1.3b (opt), quant int4 group 64, weights zero3, offload cpu" "$TMP/ds" ||
  fail "DeepSpeed options not read as zinc's:\n$(cat "$TMP/ds")"
grep -q "pin-memory 0 ignored" "$TMP/ds.err" || fail "no --pin-memory warning:\n$(cat "$TMP/ds.err")"
for key in stage3_prefetch_bucket_size offload_param.buffer_count fp16; do
  grep -q "keys zinc has no use for (ignored): .*$key" "$TMP/ds.err" || fail "no unused-keys warning for $key:\n$(cat "$TMP/ds.err")"
done
# --disk-offload reads a zinc store in place.
run_ok "$TMP/convert" "$ZINC" convert --model "$FIXTURES/llama_gqa" --out "$TMP/m.zinc.h5" --quant nf4 --group-size 32
run_ok "$TMP/disk" "$ZINC" bench --model "$TMP/m.zinc.h5" --disk-offload --pin-memory 1 "${B[@]}" --nvme-block-size 8KiB
grep -q "offload nvme" "$TMP/disk" || fail "--disk-offload did not read the store from NVMe:\n$(cat "$TMP/disk")"
# Refusals, each naming what is wrong.
expect_exit 2 "zinc never downloads: add --dummy" "$ZINC" bench --model facebook/opt-30b "${B[@]}"
expect_exit 2 "no built-in shape" "$ZINC" bench --dummy --model facebook/opt-999b "${B[@]}"
expect_exit 2 "--quant_bits (8 bits) contradicts --deepspeed-config" "$ZINC" bench --dummy --model facebook/opt-1.3b \
  --deepspeed-config "$TMP/ds.json" --quant_bits 8 "${B[@]}"
expect_exit 2 "--disk-offload (offload nvme) contradicts --deepspeed-config" "$ZINC" bench --dummy --model facebook/opt-1.3b \
  --deepspeed-config "$TMP/ds.json" --disk-offload "${B[@]}"
expect_exit 2 "--disk-offload with --dummy needs --offload-dir" "$ZINC" bench --dummy --model meta-llama/Llama-2-70b-hf \
  --disk-offload "${B[@]}"
expect_exit 1 "zinc convert --model dummy:bloom-176b --quant int4 --group-size 64 --out $TMP/none/bloom-176b.int4.g64.zinc.h5" \
  "$ZINC" bench --dummy --model bigscience/bloom --disk-offload --offload-dir "$TMP/none" --quant_bits 4 "${B[@]}"
sed 's/"stage": 3/"stage": 2/' "$TMP/ds.json" >"$TMP/stage2.json"
expect_exit 2 "zinc runs ZeRO-3" "$ZINC" bench --dummy --model facebook/opt-1.3b --deepspeed-config "$TMP/stage2.json" "${B[@]}"
sed 's/"pin_memory": true/"pin_memory": true, "nvme_pth": "x"/' "$TMP/ds.json" >"$TMP/typo.json"
expect_exit 2 "unknown DeepSpeed key 'zero_optimization.offload_param.nvme_pth'" "$ZINC" bench --dummy \
  --model facebook/opt-1.3b --deepspeed-config "$TMP/typo.json" "${B[@]}"
expect_exit 2 "--quant_bits: 3 bits; zinc quantizes to 4 or 8" "$ZINC" bench --dummy --model facebook/opt-1.3b --quant_bits 3 "${B[@]}"
expect_exit 2 "--quant_bits takes 4 or 8, not 'four'" "$ZINC" bench --dummy --model facebook/opt-1.3b --quant_bits four "${B[@]}"
