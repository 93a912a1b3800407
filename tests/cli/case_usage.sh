# zinc --help / --version / generate --help work; bad command lines exit 2 with a hint.
expect_exit 0 "generate" "$ZINC" --help
expect_exit 0 "zinc " "$ZINC" --version
expect_exit 0 "--max-new-tokens" "$ZINC" generate --help
expect_exit 2 "unknown command 'frobnicate'" "$ZINC" frobnicate
expect_exit 2 "no command given" "$ZINC"
expect_exit 2 "zinc generate --help" "$ZINC" generate --model "$FIXTURES/llama_mha" --prompt-ids 1,2 --bogus
expect_exit 2 "max-new-tokens" "$ZINC" generate --model "$FIXTURES/llama_mha" --prompt-ids 1,2 --max-new-tokens abc
expect_exit 2 "no prompts" "$ZINC" generate --model "$FIXTURES/llama_mha"
expect_exit 2 "--model" "$ZINC" generate --prompt-ids 1,2
expect_exit 1 "'x' is not a token id" "$ZINC" generate --model "$FIXTURES/llama_mha" --prompt-ids 1,x
expect_exit 1 "outside the vocabulary" "$ZINC" generate --model "$FIXTURES/llama_mha" --prompt-ids 1,999
expect_exit 1 "--top-p" "$ZINC" generate --model "$FIXTURES/llama_mha" --prompt-ids 1,2 --temperature 1 --top-p 2
printf '3 4 5\nnot ids\n' >"$TMP/prompts.txt"
expect_exit 1 "prompts.txt:2" "$ZINC" generate --model "$FIXTURES/llama_mha" --prompt-ids-file "$TMP/prompts.txt"
expect_exit 1 "cannot open the prompts file" "$ZINC" generate --model "$FIXTURES/llama_mha" --prompt-ids-file "$TMP/none.txt"
# Backends and dtypes: bad choices are clear errors; cuda without a GPU names the rank.
M="$FIXTURES/llama_gqa"
expect_exit 1 "is not a compute dtype" "$REAL_ZINC" generate --model "$M" --prompt-ids 1,2 --dtype fp8
expect_exit 1 "the cpu backend computes in fp32" "$REAL_ZINC" generate --model "$M" --prompt-ids 1,2 --backend cpu --dtype fp16
expect_exit 1 "is not a backend of this build" "$REAL_ZINC" generate --model "$M" --prompt-ids 1,2 --backend tpu
if "$REAL_ZINC" --version | grep -q "no GPU visible\|built without CUDA"; then
  if "$REAL_ZINC" --version | grep -q "built without CUDA"; then  # a CPU-only build (the sanitized one)
    expect_exit 1 "zinc was built without CUDA" "$REAL_ZINC" generate --model "$M" --prompt-ids 1,2 --backend cuda
  else
    expect_exit 1 "rank 0 sees no GPU" "$REAL_ZINC" generate --model "$M" --prompt-ids 1,2 --backend cuda
  fi
  # auto falls back to the CPU backend where no GPU is visible
  run_ok "$TMP/auto" "$REAL_ZINC" generate --model "$M" --prompt-ids 1,2 --max-new-tokens 2
  grep -q "backend cpu" "$TMP/auto" || fail "--backend auto did not pick cpu without a GPU"
fi
# zinc devbench measures the backend's copies and every dequantize kernel (small sizes here).
run_ok "$TMP/devbench" "$ZINC" devbench --backend cpu --rows 64 --cols 256 --bytes 1MiB --repeat 1 --json "$TMP/dev.json"
grep -q "dequant nf4" "$TMP/devbench" && grep -q '"d2d copy"' "$TMP/dev.json" || fail "devbench output:\n$(cat "$TMP/devbench")"
expect_exit 2 "dividing --cols" "$ZINC" devbench --cols 100 --group-size 64
