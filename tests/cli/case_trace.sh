# --trace FILE (runtime/common/trace.hpp): the host timeline of a run is Chrome trace JSON
# with a row per thread — the decode lanes, the KV worker, the weight loader — and their
# spans; at np 2 rank 1 writes FILE.rank1. bench writes one too. A path that is not a
# regular file is refused before the run.
P=(--prompt-ids 5,6,7 --prompt-ids 8,9 --prompt-ids 1,2,3,4 --prompt-ids 10,11 --max-new-tokens 3)
LANES=(--zero --kv-offload --kv-overlap on --micro-batch 1)
run_ok "$TMP/g" mpirun -np 2 "$ZINC" generate --model "$FIXTURES/llama_mha" "${P[@]}" "${LANES[@]}" \
  --trace "$TMP/t.json"
python3 - "$TMP/t.json" "$TMP/t.json.rank1" <<'PY' || fail "trace: $(head -c 600 "$TMP/t.json")"
import json, sys
for rank, path in enumerate(sys.argv[1:]):
    ev = json.load(open(path))["traceEvents"]
    threads = {e["args"]["name"] for e in ev if e["ph"] == "M"}
    spans = [e for e in ev if e["ph"] == "X"]
    names = {e["name"] for e in spans}
    for t in ["lane 0 (main)", "lane 1", "kv worker", "weight loader"]:
        assert t in threads, (path, t, threads)
    for n in ["prefill", "decode step", "attention", "kv store", "q/k/v wait", "attention wait",
              "turn wait", "load", "prefill store"]:
        assert n in names, (path, n, names)
    assert all(e["pid"] == rank and e["dur"] >= 0 and e["ts"] >= 0 for e in spans), path
    steps = [e for e in spans if e["name"] == "decode step"]
    assert len(steps) == 2, (path, len(steps))  # 3 new tokens: the prefill's, then 2 steps
    # A decode step's attention happens inside it, on the KV worker.
    s = steps[0]
    inside = [e for e in spans if e["name"] == "attention" and s["ts"] <= e["ts"] <= s["ts"] + s["dur"]]
    assert inside, (path, "no attention inside the first decode step")
PY
run_ok "$TMP/b" "$ZINC" bench --model dummy:tiny-llama --batch-size 2 --prompt-len 4 --gen-len 2 --loops 1 \
  --warmup 0 --backend cpu --quiet --trace "$TMP/b.json"
python3 -c "import json,sys; e=json.load(open(sys.argv[1]))['traceEvents']; assert any(x['name']=='decode step' for x in e)" \
  "$TMP/b.json" || fail "bench trace"
expect_exit 1 "/dev/full: not a regular file" "$ZINC" generate --model "$FIXTURES/llama_mha" "${P[@]}" --trace /dev/full
