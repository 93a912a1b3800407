# Every output file zinc writes (generate --metrics-json, bench --json/--csv, attnbench,
# devbench and iobench --json) on a device that is always full (/dev/full) or in a missing
# folder: "cannot write FILE: reason" and exit 1, never a silent 0 with an empty file. The
# same files written to a real folder still work.
GEN=(generate --model "$FIXTURES/llama_mha" --prompt-ids 5,6,7 --max-new-tokens 2)
BENCH=(bench --model dummy:tiny-llama --batch-size 1 --prompt-len 4 --gen-len 2 --loops 1 --warmup 0
       --backend cpu --quiet)
ATTN=(attnbench --batch 1 --heads 2 --head-dim 32 --context 16 --kv-quant f16 --repeat 1 --threads 1
      --bandwidth-bytes 1MiB)
DEV=(devbench --backend cpu --bytes 1MiB --rows 64 --cols 128 --repeat 1)
FULL="cannot write /dev/full: No space left on device"

expect_exit 1 "$FULL" "$ZINC" "${GEN[@]}" --metrics-json /dev/full
expect_exit 1 "$FULL" mpirun -np 2 "$ZINC" "${GEN[@]}" --metrics-json /dev/full
expect_exit 1 "cannot write $TMP/no/such/m.json: No such file or directory" \
  "$ZINC" "${GEN[@]}" --metrics-json "$TMP/no/such/m.json"
expect_exit 1 "$FULL" "$ZINC" "${BENCH[@]}" --json /dev/full
expect_exit 1 "$FULL" "$ZINC" "${BENCH[@]}" --csv /dev/full
expect_exit 1 "$FULL" "$ZINC" "${ATTN[@]}" --json /dev/full
expect_exit 1 "$FULL" "$ZINC" "${DEV[@]}" --json /dev/full
run_ok "$TMP/conv" "$ZINC" convert --model dummy:tiny-llama --out "$TMP/tl.zinc.h5" --quant nf4
IO=(iobench "$TMP/tl.zinc.h5" --repeat 1 --nvme-block-size 64KiB)
expect_exit 1 "$FULL" "$ZINC" "${IO[@]}" --json /dev/full

# A real folder: every file is there and parses.
run_ok "$TMP/gen" "$ZINC" "${GEN[@]}" --metrics-json "$TMP/m.json"
run_ok "$TMP/bench" "$ZINC" "${BENCH[@]}" --json "$TMP/b.json" --csv "$TMP/b.csv"
run_ok "$TMP/attn" "$ZINC" "${ATTN[@]}" --json "$TMP/a.json"
run_ok "$TMP/dev" "$ZINC" "${DEV[@]}" --json "$TMP/d.json"
run_ok "$TMP/io" "$ZINC" "${IO[@]}" --json "$TMP/i.json"
python3 - "$TMP" <<'PY' || fail "an output file is missing or not JSON"
import json, sys
d = sys.argv[1]
for name in ("m.json", "b.json", "a.json", "d.json", "i.json"):
    json.load(open(f"{d}/{name}"))
assert open(f"{d}/b.csv").read().startswith("batch_per_rank,")
PY
CHECKS=$((CHECKS + 1))
