# --plan auto (runtime/generate/run_plan.hpp, cli/plan_setup.cpp): the plan is printed before
# the load, applied (the placement and KV lines say what it chose), the same on every rank
# (the tokens equal a run without it: the CPU backend computes every placement exactly),
# and reported against the measured step; bench --batch-size auto takes the planner's batch.
M="$FIXTURES/llama_gqa"
P=(--prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --prompt-ids 16,17 --max-new-tokens 6)
run_ok "$TMP/convert" "$ZINC" convert --model "$M" --out "$TMP/m.zinc.h5" --quant nf4 --group-size 32
S="$TMP/m.zinc.h5"
run_ok "$TMP/base" "$ZINC" generate --model "$S" "${P[@]}" --offload none
for np in 1 2; do
  out="$TMP/plan.$np"
  run_ok "$out" mpirun -np $np "$ZINC" generate --model "$S" "${P[@]}" --plan auto --kv-quant auto --gpu-memory-budget 64MiB
  same_outputs "$TMP/base" "$out"
  grep -q "^plan: batch [0-9]* per rank; KV cache" "$out.err" || fail "no plan printed:\n$(cat "$out.err")"
  grep -Eq "^plan: predicted decode step [0-9.e+-]+ ms, measured [0-9.e+-]+ ms" "$out" || fail "no prediction vs measured:\n$(cat "$out")"
done
# A host memory too small for the shards: a store can be read from NVMe, and the plan says so.
run_ok "$TMP/nvme" "$ZINC" generate --model "$S" "${P[@]}" --plan auto --gpu-memory-budget 300KiB --cpu-memory-budget 60KiB
grep -q "weights streamed from NVMe" "$TMP/nvme.err" || fail "no NVMe plan:\n$(cat "$TMP/nvme.err")"
grep -Eq "^placement: .*[1-9][0-9]* on NVMe" "$TMP/nvme" || fail "the run read nothing from NVMe:\n$(cat "$TMP/nvme")"
same_outputs "$TMP/base" "$TMP/nvme"
# bench: the planner's batch, the plan in the header and JSON, a prediction per row.
run_ok "$TMP/bench" "$ZINC" bench --model dummy:tiny-llama --quant int8 --plan auto --batch-size auto --kv-quant auto \
  --gpu-memory-budget 300MiB --prompt-len 8 --gen-len 3 --loops 1 --warmup 0 --backend cpu --quiet --json "$TMP/b.json"
python3 - "$TMP/b.json" <<'PY' || fail "bench --plan auto JSON:\n$(cat "$TMP/b.json")"
import json, re, sys
j = json.load(open(sys.argv[1]))
m = re.match(r"plan: batch (\d+) per rank", j["header"]["plan"])
assert m, j["header"]["plan"]
(row,) = j["rows"]
assert row["batch_per_rank"] == int(m.group(1)), (row["batch_per_rank"], m.group(1))
assert row["predicted_step_ms"] > 0 and row["predicted_prefill_s"] > 0, row
PY
# Refusals: what only the planner can choose, a placement it must choose, a budget below one layer.
expect_exit 2 "--kv-quant auto lets the planner choose: add --plan auto" "$ZINC" generate --model "$S" "${P[@]}" --kv-quant auto
expect_exit 2 "--batch-size auto is the planner's choice: add --plan auto" "$ZINC" bench --model "$S" --batch-size auto
expect_exit 2 "--plan must be auto or off" "$ZINC" generate --model "$S" "${P[@]}" --plan yes
expect_exit 1 "drop --offload none" "$ZINC" generate --model "$S" "${P[@]}" --plan auto --offload none
expect_exit 1 "no plan fits" "$ZINC" generate --model "$S" "${P[@]}" --plan auto --gpu-memory-budget 16KiB
