# Data-parallel generation: 1, 2, 3 and 4 ranks (more ranks than prompts included) give
# the tokens of the one-process run, greedy and sampled; the metrics JSON is written.
M="$FIXTURES/llama_gqa"
P=(--prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --max-new-tokens 8)
run_ok "$TMP/np0" "$ZINC" generate --model "$M" "${P[@]}" --metrics-json "$TMP/m0.json"
for np in 1 2 3 4; do
  run_ok "$TMP/np$np" mpirun -np $np "$ZINC" generate --model "$M" "${P[@]}" --metrics-json "$TMP/m$np.json"
  same_outputs "$TMP/np0" "$TMP/np$np"
  grep -q '"ranks": '$np "$TMP/m$np.json" || fail "metrics JSON of np $np lacks ranks"
  grep -q '"generated_tokens": 24' "$TMP/m$np.json" || fail "metrics JSON of np $np: wrong token count"
done
grep -q 'decode' "$TMP/np2" || fail "no metrics table printed"
S=(--temperature 0.8 --top-k 50 --top-p 0.9 --seed 1234)
run_ok "$TMP/s1" "$ZINC" generate --model "$M" "${P[@]}" "${S[@]}"
run_ok "$TMP/s1b" "$ZINC" generate --model "$M" "${P[@]}" "${S[@]}" --batch-size 1
run_ok "$TMP/s3" mpirun -np 3 "$ZINC" generate --model "$M" "${P[@]}" "${S[@]}"
same_outputs "$TMP/s1" "$TMP/s1b"
same_outputs "$TMP/s1" "$TMP/s3"
run_ok "$TMP/s2" "$ZINC" generate --model "$M" "${P[@]}" --temperature 0.8 --seed 99
[ "$(grep output: "$TMP/s1")" != "$(grep output: "$TMP/s2")" ] || fail "different seeds gave identical samples"
