# Text in, text out with the bundled trained model: the tokenizer in the model directory
# and in a zinc store; transformers' greedy text (reference_greedy.json) for --quant none;
# the same text at 1 and 2 ranks with NF4 shards; clear errors without a tokenizer.
M="$FIXTURES/../../examples/models/austen-melville-6m"
run_ok "$TMP/t0" "$ZINC" generate --model "$M" --prompt "Once upon a time" --prompt "The old man" --max-new-tokens 32
grep -qF "[1] output: of life, and the whale's head-lades, is a very large, and a whale-box in the course of the whale," "$TMP/t0" \
  || fail "text differs from transformers: $(cat "$TMP/t0")"
grep -qF "[2] output: was a very good-humoured, well-meaning, and a very good sort of man, and a little more agreeable man, who had been used" "$TMP/t0" \
  || fail "text 2 differs from transformers: $(cat "$TMP/t0")"
printf 'Once upon a time\n\nCall me Ishmael.\nEmma was\n' >"$TMP/prompts.txt"
Q=(--prompts-file "$TMP/prompts.txt" --max-new-tokens 12 --quant nf4 --group-size 16)
run_ok "$TMP/q1" "$ZINC" generate --model "$M" "${Q[@]}"
run_ok "$TMP/q2" mpirun -np 2 "$ZINC" generate --model "$M" "${Q[@]}"
same_outputs "$TMP/q1" "$TMP/q2"
[ "$(grep -c 'output:' "$TMP/q1")" -eq 3 ] || fail "expected 3 outputs (the blank line is skipped)"
run_ok "$TMP/convert" "$ZINC" convert --model "$M" --out "$TMP/a.zinc.h5" --quant nf4 --group-size 16
run_ok "$TMP/s2" mpirun -np 2 "$ZINC" generate --model "$TMP/a.zinc.h5" --prompts-file "$TMP/prompts.txt" --max-new-tokens 12
same_outputs "$TMP/q1" "$TMP/s2"
expect_exit 1 "has no tokenizer" "$ZINC" generate --model "$FIXTURES/llama_mha" --prompt "hello"
expect_exit 1 "has no tokenizer" "$ZINC" generate --model dummy:tiny-llama --prompt "hello"
echo '{"model": {"type": "Unigram"}}' >"$TMP/tok.json"
expect_exit 1 "tok.json" "$ZINC" generate --model "$M" --tokenizer "$TMP/tok.json" --prompt "hello"
