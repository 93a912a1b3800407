# Bad model directories: a clear error naming the file, exit 1, at 1 and 2 ranks, no hang.
P=(--prompt-ids 5,6,7 --max-new-tokens 2)
expect_exit 1 "nowhere: no such model" "$ZINC" generate --model "$TMP/nowhere" "${P[@]}"
mkdir -p "$TMP/empty"
expect_exit 1 "config.json" "$ZINC" generate --model "$TMP/empty" "${P[@]}"

mk() { rm -rf "$TMP/m"; cp -r "$FIXTURES/llama_mha" "$TMP/m"; }
mk; sed -i 's/"model_type": "llama"/"model_type": "gpt2"/' "$TMP/m/config.json"
expect_exit 1 "model_type 'gpt2' is not supported" "$ZINC" generate --model "$TMP/m" "${P[@]}"
# transformers would run gelu(gate) * up; zinc's SwiGLU would run silu: refused, naming the key.
mk; sed -i 's/"model_type": "llama"/"model_type": "llama", "hidden_act": "gelu"/' "$TMP/m/config.json"
expect_exit 1 "config.json: hidden_act 'gelu' is not supported for llama" "$ZINC" generate --model "$TMP/m" "${P[@]}"
mk; sed -i 's/"num_hidden_layers": 2/"num_hidden_layers": 3/' "$TMP/m/config.json"
expect_exit 1 "model.layers.2" "$ZINC" generate --model "$TMP/m" "${P[@]}"
mk; sed -i 's/"intermediate_size": 160/"intermediate_size": 128/' "$TMP/m/config.json"
expect_exit 1 "expected [128, 64]" "$ZINC" generate --model "$TMP/m" "${P[@]}"
mk; echo '{"model_type": "llama",' >"$TMP/m/config.json"
expect_exit 1 "config.json" "$ZINC" generate --model "$TMP/m" "${P[@]}"
mk; truncate -s 100000 "$TMP/m/model.safetensors"
expect_exit 1 "model.safetensors" "$ZINC" generate --model "$TMP/m" "${P[@]}"
mk; truncate -s 4 "$TMP/m/model.safetensors"
expect_exit 1 "model.safetensors" "$ZINC" generate --model "$TMP/m" "${P[@]}"
mk; rm "$TMP/m/model.safetensors"
expect_exit 1 "no model.safetensors" "$ZINC" generate --model "$TMP/m" "${P[@]}"
# Under mpirun every rank fails the same way; the job ends (no hang) with the message.
mk; truncate -s 100000 "$TMP/m/model.safetensors"
expect_exit 1 "model.safetensors" mpirun -np 2 "$ZINC" generate --model "$TMP/m" "${P[@]}"
# A budget too small for the weights is refused, naming the budget.
expect_exit 1 "memory budget exceeded" "$ZINC" generate --model "$FIXTURES/llama_mha" "${P[@]}" --memory-budget 64KiB
# What is not a regular file is refused at once, naming it: a FIFO named model.safetensors
# blocked open(2) forever (at every rank).
mk; rm "$TMP/m/model.safetensors"; mkfifo "$TMP/m/model.safetensors"
expect_exit 1 "model.safetensors: is a FIFO, not a regular file" "$ZINC" generate --model "$TMP/m" "${P[@]}"
expect_exit 1 "model.safetensors: is a FIFO, not a regular file" mpirun -np 2 "$ZINC" generate --model "$TMP/m" "${P[@]}"
mk; rm "$TMP/m/config.json"; mkdir "$TMP/m/config.json"
expect_exit 1 "config.json: is a directory, not a regular file" "$ZINC" generate --model "$TMP/m" "${P[@]}"
mkfifo "$TMP/fifo.zinc.h5" "$TMP/tokenizer.json"
expect_exit 1 "fifo.zinc.h5: not a regular file" "$ZINC" generate --model "$TMP/fifo.zinc.h5" "${P[@]}"
expect_exit 1 "tokenizer.json: is a FIFO, not a regular file" \
  "$ZINC" generate --model "$FIXTURES/llama_mha" --tokenizer "$TMP/tokenizer.json" --prompt hello
# A special token id outside the vocabulary is refused when the config is read, at every
# rank count, naming the file and the key (a pad of 999 in a 320-token vocabulary ran,
# embedding past the table wherever a batch needed padding).
mk; sed -i 's/"pad_token_id": 0/"pad_token_id": 999/' "$TMP/m/generation_config.json"
for np in 1 2 3; do
  expect_exit 1 "generation_config.json: \"pad_token_id\" is 999, outside the vocabulary [0, 320)" \
    mpirun -np $np "$ZINC" generate --model "$TMP/m" --prompt-ids 1,2,3 --prompt-ids 4 --max-new-tokens 2
done
mk; sed -i 's/"bos_token_id": 1/"bos_token_id": 320/' "$TMP/m/config.json" "$TMP/m/generation_config.json"
expect_exit 1 "config.json: \"bos_token_id\" is 320, outside the vocabulary [0, 320)" "$ZINC" generate --model "$TMP/m" "${P[@]}"
