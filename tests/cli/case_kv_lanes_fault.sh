# A host-KV decode step's lanes (runtime/model/decoder_lanes.cpp) stop cleanly on a host
# error: a checkpoint whose layer-1 keys exceed the fp16 range cannot go into an int8 KV
# cache. The prefill's store job fails on the KV worker; the first decode step's lane 0
# meets the error, the other lanes stop waiting for their turns, and the run exits 1 with
# the KV cache's message, at 1 and 2 ranks (both ranks fail the same way), well within
# expect_exit's timeout.
rm -rf "$TMP/m"; cp -r "$FIXTURES/llama_mha" "$TMP/m"
python3 "$(dirname "$case_file")/edit_tensor.py" "$TMP/m/model.safetensors" \
  model.layers.1.self_attn.k_proj.weight scale 1e7
P4=(--prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --prompt-ids 16,17 --max-new-tokens 4)
for np in 1 2; do
  expect_exit 1 "KV cache cannot hold value" mpirun -np $np "$ZINC" generate --model "$TMP/m" "${P4[@]}" --zero \
    --kv-offload --kv-quant int8 --kv-overlap on --micro-batch 1
done
# The same checkpoint runs with an fp32 host KV cache: the lanes themselves are fine.
run_ok "$TMP/fp32" "$ZINC" generate --model "$TMP/m" "${P4[@]}" --zero --kv-offload --kv-overlap on --micro-batch 1
grep -q "decode in 4 lanes" "$TMP/fp32" || fail "no lanes:\n$(cat "$TMP/fp32")"
