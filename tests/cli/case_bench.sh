# zinc bench: a batch-size sweep on a tiny dummy model at 1 and 2 ranks writes the table
# (with its units row), JSON and CSV; every run makes exactly --gen-len tokens per sequence
# (EOS ignored), so the token counts are B*gen and B*(gen-1). Bad sweeps are usage errors.
# (The numbers themselves are not checked: speed is measured on the target machines.)
B=(bench --model dummy:tiny-llama --quant nf4 --batch-size 1,2 --prompt-len 8 --gen-len 4 --loops 2 --backend cpu)
check_bench() {  # check_bench NAME RANKS: the outputs of one run
  local out=$TMP/$1 ranks=$2
  grep -Eq '^ +seq +seq +s +s +tok/s +tok/s +ms ' "$out" || fail "$1: no units row:\n$(cat "$out")"
  grep -q "^# link: .* GB/s pinned H2D (cpu backend: a host memcpy" "$out" || fail "$1: no labelled link:\n$(cat "$out")"
  grep -q "^# zinc bench  commit " "$out" || fail "$1: no header"
  [ "$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9.]+ ' "$out")" -eq 2 ] || fail "$1: not 2 table rows:\n$(cat "$out")"
  [ "$(wc -l <"$out.csv")" -eq 3 ] || fail "$1: CSV is not a header + 2 lines:\n$(cat "$out.csv")"
  head -1 "$out.csv" | grep -q '^batch_per_rank,batch,prefill_s,decode_s,decode_tok_s' || fail "$1: CSV header"
  python3 - "$out.json" "$ranks" <<'PY' || fail "$1: JSON checks failed:\n$(cat "$out.json")"
import json, sys
j = json.load(open(sys.argv[1])); ranks = int(sys.argv[2]); gen = 4
rows = j["rows"]
assert j["header"]["ranks"] == ranks and j["header"]["backend"] == "cpu", j["header"]
assert j["header"]["h2d_gbs"] > 0 and j["header"]["commit"], j["header"]
assert len(rows) == 2, rows
for r, b in zip(rows, (1, 2)):
    assert r["batch_per_rank"] == b and r["batch"] == b * ranks, r
    assert r["decode_tok_s"] > 0 and r["total_tok_s"] > 0 and r["prefill_s"] > 0, r
    assert r["decode_tokens"] == r["batch"] * (gen - 1) and r["generated_tokens"] == r["batch"] * gen, r
    assert r["stream_bytes_per_step"] > 0 and r["roofline_fraction"] > 0 and r["peak_device_bytes"] > 0, r
PY
  CHECKS=$((CHECKS + 1))
}
run_ok "$TMP/b1" "$ZINC" "${B[@]}" --json "$TMP/b1.json" --csv "$TMP/b1.csv"
check_bench b1 1
grep -q "batch 2: warm-up" "$TMP/b1.err" && grep -q "loop 2/2: prefill" "$TMP/b1.err" &&
  grep -q "decode step 3/3" "$TMP/b1.err" || fail "no progress on stderr:\n$(cat "$TMP/b1.err")"
run_ok "$TMP/b2" mpirun -np 2 "$ZINC" "${B[@]}" --json "$TMP/b2.json" --csv "$TMP/b2.csv" --quiet
check_bench b2 2
[ ! -s "$TMP/b2.err" ] || ! grep -q "warm-up" "$TMP/b2.err" || fail "--quiet still shows progress"

# --kv-offload: the host read bandwidth in the header, the KV bytes a decode step reads
# (tiny-llama: 4 layers x 2 kv heads x 2 (K, V) x (8 + 4/2 keys) x hd 32 int8 codes + 2 fp16
# params = 36 bytes per row: 5760 per sequence), its fraction and the step over its bound;
# --offload nvme: the store's raw read bandwidth and the tier's fraction of it.
run_ok "$TMP/kv" "$ZINC" bench --model dummy:tiny-llama --batch-size 2 --prompt-len 8 --gen-len 4 --loops 1 \
  --warmup 0 --backend cpu --kv-offload --kv-quant int8 --json "$TMP/kv.json" --quiet
grep -q "^# host read: .* GB/s" "$TMP/kv" || fail "no host read bandwidth in the header:\n$(cat "$TMP/kv")"
run_ok "$TMP/conv" "$ZINC" convert --model dummy:tiny-llama --out "$TMP/tl.zinc.h5" --quant nf4
run_ok "$TMP/nv" "$ZINC" bench --model "$TMP/tl.zinc.h5" --offload nvme --batch-size 2 --prompt-len 8 --gen-len 3 \
  --loops 1 --warmup 0 --backend cpu --json "$TMP/nv.json" --quiet
python3 - "$TMP/kv.json" "$TMP/nv.json" <<'PY' || fail "kv / nvme bench JSON checks failed"
import json, sys
kv = json.load(open(sys.argv[1])); nv = json.load(open(sys.argv[2]))
assert kv["header"]["host_read_gbs"] > 0, kv["header"]
r = kv["rows"][0]
assert r["kv_read_bytes_per_step"] == 2 * 5760, r
assert r["kv_read_fraction"] > 0 and r["step_over_bound"] > 0 and r["kv_host_cpu_s"] > 0, r
assert nv["header"]["disk_raw_gbs"] > 0 and nv["rows"][0]["nvme_fraction"] > 0, nv
PY
CHECKS=$((CHECKS + 1))

expect_exit 2 "--batch-size" "$ZINC" bench --model dummy:tiny-llama --batch-size 1,x
expect_exit 2 "--batch-size" "$ZINC" bench --model dummy:tiny-llama --batch-size 1,,2
expect_exit 2 "--batch-size" "$ZINC" bench --model dummy:tiny-llama --batch-size 0
expect_exit 2 "--gen-len must be >= 2" "$ZINC" bench --model dummy:tiny-llama --gen-len 1
expect_exit 2 "--prompt-len must be >= 1" "$ZINC" bench --model dummy:tiny-llama --prompt-len 0
expect_exit 2 "--loops must be >= 1" "$ZINC" bench --model dummy:tiny-llama --loops 0
expect_exit 0 "--prompt-len" "$ZINC" bench --help

# launch/plot_bench.py draws the two PNGs where the system python has matplotlib.
PLOT="$(dirname "$case_file")/../../launch/plot_bench.py"
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  run_ok "$TMP/plot" /usr/bin/python3 "$PLOT" "$TMP/b1.csv" "$TMP/b2.csv" --out "$TMP/plots"
  [ -s "$TMP/plots/decode_throughput.png" ] && [ -s "$TMP/plots/roofline_fraction.png" ] ||
    fail "plot_bench.py wrote no PNGs: $(ls "$TMP/plots")"
else
  echo "skipped: /usr/bin/python3 has no matplotlib (python3-matplotlib): plot_bench.py not run"
fi
