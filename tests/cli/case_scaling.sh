# launch/scaling.py, the scaling-study driver: zinc bench at 1 and 2 ranks, strong (total
# batch 4) and weak (2 per rank), one CSV row per point with the N-rank roofline model
# beside it and each run's JSON kept; PNG plots where that python has matplotlib.
ROOT=$(cd "$(dirname "$case_file")/../.." && pwd)
run_ok "$TMP/scale.log" python3 "$ROOT/launch/scaling.py" --zinc "$ZINC" --out "$TMP/scale" --counts 1,2 --strong 4 \
  --weak 2 -- --model dummy:tiny-llama --quant int8 --prompt-len 8 --gen-len 3 --loops 1 --warmup 0 --backend cpu
python3 - "$TMP/scale" <<'PY' || fail "scaling.csv:\n$(cat "$TMP/scale/scaling.csv")"
import csv, os, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "scaling.csv"))))
got = sorted((r["mode"], int(r["gpus"]), int(r["batch"]), int(r["batch_per_gpu"])) for r in rows)
assert got == [("strong", 1, 4, 4), ("strong", 2, 4, 2), ("weak", 1, 2, 2), ("weak", 2, 4, 2)], got
for r in rows:
    assert float(r["decode_tok_s"]) > 0 and float(r["model_bound_ms"]) > 0 and float(r["model_tok_s"]) > 0, r
    assert (float(r["model_allgather_ms"]) > 0) == (r["gpus"] == "2"), r  # the gather term only with peers
    assert os.path.exists(os.path.join(out, f"{r['gpus']}-{r['mode']}-{r['batch']}.json")), r
assert [float(r["per_gpu_efficiency"]) for r in rows if r["gpus"] == "1"] == [1.0, 1.0]
PY
grep -q "model: H2D .* ms, all-gather .* ms -> .* tok/s; per-GPU efficiency" "$TMP/scale.log" || fail "no model lines:\n$(cat "$TMP/scale.log")"
if python3 -c "import matplotlib" 2>/dev/null; then
  for f in strong_decode_tok_s weak_per_gpu_efficiency strong_roofline_fraction weak_stages; do
    [ -s "$TMP/scale/$f.png" ] || fail "no $f.png: $(ls "$TMP/scale")"
  done
fi
expect_exit 1 "give --strong TOTAL_BATCHES and/or --weak" python3 "$ROOT/launch/scaling.py" --zinc "$ZINC" --out "$TMP/x"
