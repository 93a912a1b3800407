# Count options beyond what the machine or the model can use: a stated clamp (a warning,
# then the run) or a clear usage error, never a crash or a runaway allocation.
M="$FIXTURES/llama_mha"  # 4 blobs: embed, 2 layers, head (untied)
P=(--prompt-ids 5,6,7 --max-new-tokens 2)
# An address-space cap, so that a runaway allocation fails at once instead of taking the
# machine's memory (a million gather slots took 12+ GB before they were clamped).
CAPPED=(bash -c 'ulimit -v 3000000; exec "$@"' capped)
# Under AddressSanitizer (launch/sanitize_tests.sh) the shadow memory alone reserves terabytes
# of address space, so the cap is ASan's own resident-memory limit instead.
if grep -q __asan_init "$REAL_ZINC"; then
  CAPPED=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}hard_rss_limit_mb=3000")
fi

# --threads above the node's cores is clamped to them (100000 OpenMP threads segfaulted).
cores=$(getconf _NPROCESSORS_ONLN)  # std::thread::hardware_concurrency()
run_ok "$TMP/threads" "$ZINC" generate --model "$M" "${P[@]}" --threads 100000 --metrics-json "$TMP/threads.json"
grep -q "warning: --threads 100000 is more than the $cores cores of this node: using $cores" "$TMP/threads.err" ||
  fail "no clamp warning for --threads 100000:\n$(cat "$TMP/threads.err")"
grep -Eq "\"threads_per_rank\": ?$cores[,}]" "$TMP/threads.json" ||
  fail "--threads 100000 did not run on $cores threads:\n$(cat "$TMP/threads.json")"
# Only rank 0 says so.
run_ok "$TMP/threads2" mpirun -np 2 "$ZINC" generate --model "$M" "${P[@]}" --threads 100000
[ "$(grep -c 'warning: --threads' "$TMP/threads2.err")" -eq 1 ] ||
  fail "expected one --threads warning at 2 ranks:\n$(cat "$TMP/threads2.err")"

# --prefetch-depth above the blob loads of a forward pass is clamped to them (a million
# slots ate 12+ GB and hung; 2^31-1 ended in "internal error: std::bad_alloc").
for depth in 1000000 2147483647; do
  run_ok "$TMP/depth$depth" "${CAPPED[@]}" "$ZINC" generate --model "$M" "${P[@]}" --quant int8 --group-size 32 \
    --prefetch-depth $depth
  grep -q "warning: --prefetch-depth $depth is more than the 4 blob loads of a forward pass: using 4" \
    "$TMP/depth$depth.err" || fail "no clamp warning for --prefetch-depth $depth:\n$(cat "$TMP/depth$depth.err")"
  grep -q "pipeline (rank 0, 4 slots)" "$TMP/depth$depth" ||
    fail "--prefetch-depth $depth did not run with 4 slots:\n$(cat "$TMP/depth$depth")"
done
# The same for a zinc store and at 2 ranks (the clamp is the same on every rank: the plans agree).
"$ZINC" convert --model "$M" --out "$TMP/m.zinc.h5" --quant int8 --group-size 32 >/dev/null 2>&1 ||
  fail "zinc convert failed"
run_ok "$TMP/depth_store" "${CAPPED[@]}" mpirun -np 2 "$ZINC" generate --model "$TMP/m.zinc.h5" "${P[@]}" \
  --prefetch-depth 2147483647
grep -q "pipeline (rank 0, 4 slots)" "$TMP/depth_store" || fail "store run:\n$(cat "$TMP/depth_store")"

# Lengths: a prompt plus its new tokens index a 32-bit KV cache, so each length is at most
# 2^30 (2^31-1 new tokens wrapped the KV capacity to a negative "bad shape").
expect_exit 2 "--max-new-tokens must be in [1, 1073741824], got 2147483647" \
  "$ZINC" generate --model "$M" --prompt-ids 1,2 --max-new-tokens 2147483647
B=(bench --model "$M" --loops 1 --warmup 0 --quiet)
expect_exit 2 "--gen-len must be in [2, 1073741824], got 2147483647" "$ZINC" "${B[@]}" --gen-len 2147483647
expect_exit 2 "--prompt-len must be in [1, 1073741824], got 2147483647" "$ZINC" "${B[@]}" --prompt-len 2147483647
# A bench batch is made of random prompts on each rank: batch x (prompt + gen) token slots
# must fit the 32-bit step buffers (2^31-1 sequences ended in std::bad_alloc).
expect_exit 2 "--batch-size 2147483647 x (--prompt-len 4 + --gen-len 32) tokens" \
  "${CAPPED[@]}" "$ZINC" "${B[@]}" --batch-size 2147483647 --prompt-len 4

# A memory budget that rounds to 0 bytes is refused: 0 is how zinc spells "unlimited", so
# --gpu-memory-budget 0.4 ran with no budget at all.
expect_exit 2 "--gpu-memory-budget 0.4 is 0 bytes" "$ZINC" generate --model "$M" "${P[@]}" --gpu-memory-budget 0.4
expect_exit 2 "--memory-budget 0GiB is 0 bytes" "$ZINC" generate --model "$M" "${P[@]}" --memory-budget 0GiB
