# Prompts past the positions a model was trained for. Both fixtures have
# max_position_embeddings 128; positions run to prompt + new - 2 (the last new token is
# never fed back), as in transformers.
ids() { seq -s, 1 "$1"; }  # a prompt of N ids (all inside the 320-token vocabulary)
# LLaMA (RoPE) runs past 128 as transformers does, and rank 0 warns once, naming the lengths.
L="$FIXTURES/llama_mha"
run_ok "$TMP/rope" "$ZINC" generate --model "$L" --prompt-ids "$(ids 130)" --prompt-ids 1,2 --max-new-tokens 4
grep -q "warning: the longest prompt (130 tokens) + 4 new tokens reach position 132, beyond this llama model's max_position_embeddings 128" \
  "$TMP/rope.err" || fail "no position warning:\n$(cat "$TMP/rope.err")"
[ "$(grep -c 'max_position_embeddings' "$TMP/rope.err")" -eq 1 ] || fail "expected one warning:\n$(cat "$TMP/rope.err")"
# At 2 ranks the long prompt is rank 1's: rank 0 still says it, once.
run_ok "$TMP/rope2" mpirun -np 2 "$ZINC" generate --model "$L" --prompt-ids 1,2 --prompt-ids "$(ids 130)" --max-new-tokens 4
[ "$(grep -c 'warning: the longest prompt (130 tokens)' "$TMP/rope2.err")" -eq 1 ] ||
  fail "expected one warning at 2 ranks:\n$(cat "$TMP/rope2.err")"
# Within the trained length: no warning (127 + 2 new reach position 127).
run_ok "$TMP/rope_ok" "$ZINC" generate --model "$L" --prompt-ids "$(ids 127)" --max-new-tokens 2
! grep -q "max_position_embeddings" "$TMP/rope_ok.err" || fail "a warning within the trained length:\n$(cat "$TMP/rope_ok.err")"

# OPT's learned positions end at 127: 100 + 29 new need positions up to 127 and run (as
# in transformers); one more new token is refused before any work, naming the lengths.
O="$FIXTURES/opt_preln"
run_ok "$TMP/opt" "$ZINC" generate --model "$O" --prompt-ids "$(ids 100)" --max-new-tokens 29
expect_exit 1 "prompt 1: 100 tokens + 30 new need positions up to 128, beyond the model's 128 learned positions" \
  "$ZINC" generate --model "$O" --prompt-ids "$(ids 100)" --max-new-tokens 30
expect_exit 1 "beyond the model's 128 learned positions" mpirun -np 2 "$ZINC" generate --model "$O" \
  --prompt-ids 1,2 --prompt-ids "$(ids 130)" --max-new-tokens 2
