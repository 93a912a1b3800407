# A model whose logits hold NaN (here a NaN in the final norm weight, as an fp16 overflow
# would leave them) is an error naming the step, the sequence and the compute dtype, never
# a run of token 0s with exit 0 (runtime/backend/sampling.hpp's kNonFiniteLogits): greedy
# and sampled, at 1 and 2 ranks, on the CPU backend (the CUDA kernels: tests/unit's [ops]).
rm -rf "$TMP/m"; cp -r "$FIXTURES/llama_mha" "$TMP/m"
python3 "$(dirname "$case_file")/edit_tensor.py" "$TMP/m/model.safetensors" model.norm.weight set 3 nan
P=(--prompt-ids 5,6,7,8 --prompt-ids 9 --max-new-tokens 3)
MSG="the prefill: the logits of sequence 1 hold NaN or +inf: the model's activations overflowed the compute dtype (F32)"
expect_exit 1 "$MSG" "$ZINC" generate --model "$TMP/m" "${P[@]}"
expect_exit 1 "logits of sequence 1 hold NaN" "$ZINC" generate --model "$TMP/m" "${P[@]}" --temperature 0.8 --top-k 5
expect_exit 1 "hold NaN or +inf" mpirun -np 2 "$ZINC" generate --model "$TMP/m" "${P[@]}"
# The unchanged fixture still runs.
run_ok "$TMP/ok" "$ZINC" generate --model "$FIXTURES/llama_mha" "${P[@]}"
