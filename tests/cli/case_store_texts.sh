# The texts a zinc store carries (config.json, the tokenizer files) are checksummed like its
# pages: a store whose config or tokenizer was changed in place (a different rope_theta,
# two token ids swapped: either would silently change the tokens) is refused when opened,
# by generate and info, naming the store and the item, at 1 and 2 ranks.
MODEL="$(dirname "$case_file")/../../examples/models/austen-melville-6m"
run_ok "$TMP/conv" "$ZINC" convert --model "$MODEL" --out "$TMP/a.zinc.h5" --quant nf4 --group-size 16
G=(generate --prompt "It is a truth" --max-new-tokens 4)
run_ok "$TMP/good" "$ZINC" "${G[@]}" --model "$TMP/a.zinc.h5"

# patch FILE OLD NEW: replaces the one occurrence of the bytes OLD (as long as NEW).
patch() {
  python3 - "$@" <<'PY' || fail "cannot patch $1"
import sys
path, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
assert len(old) == len(new)
data = open(path, "rb").read()
assert data.count(old) == 1, data.count(old)
open(path, "wb").write(data.replace(old, new))
PY
}
cp "$TMP/a.zinc.h5" "$TMP/theta.zinc.h5"
patch "$TMP/theta.zinc.h5" '"rope_theta": 10000.0' '"rope_theta": 90000.0'
expect_exit 1 "$TMP/theta.zinc.h5: /config.json fails its CRC-32C check" "$ZINC" "${G[@]}" --model "$TMP/theta.zinc.h5"
expect_exit 1 "/config.json fails its CRC-32C check" mpirun -np 2 "$ZINC" "${G[@]}" --model "$TMP/theta.zinc.h5"
expect_exit 1 "/config.json fails its CRC-32C check" "$ZINC" info "$TMP/theta.zinc.h5"

cp "$TMP/a.zinc.h5" "$TMP/tok.zinc.h5"
patch "$TMP/tok.zinc.h5" $'"<0x0A>": 13,\n      "<0x0B>": 14' $'"<0x0A>": 14,\n      "<0x0B>": 13'
expect_exit 1 "$TMP/tok.zinc.h5: /tokenizer.json fails its CRC-32C check" "$ZINC" "${G[@]}" --model "$TMP/tok.zinc.h5"
