# zinc info --verify reads every page of every blob: a sound store passes (exit 0, the page
# count said); a store with flipped bytes, which plain `zinc info` still describes, fails
# with exit 1 and the bad pages listed by blob, page and offset.
M="$FIXTURES/llama_gqa"   # group 32 divides every row
run_ok "$TMP/conv" "$ZINC" convert --model "$M" --out "$TMP/m.zinc.h5" --quant none
run_ok "$TMP/ok" "$ZINC" info "$TMP/m.zinc.h5" --verify
grep -Eq "verified: [0-9]+ pages in 4 blobs, every one matches its CRC-32C" "$TMP/ok" ||
  fail "no verified line:\n$(cat "$TMP/ok")"

run_ok "$TMP/blobs" "$ZINC" info "$TMP/m.zinc.h5" --blobs
offset_of() { grep " $1 " "$TMP/blobs" | sed 's/.*file offset //'; }
cp "$TMP/m.zinc.h5" "$TMP/bad.zinc.h5"
flip() { printf '\xa5' | dd of="$TMP/bad.zinc.h5" bs=1 seek="$1" conv=notrunc status=none; }
l1=$(offset_of layer.0001)
h=$(offset_of head)
[ -n "$l1" ] && [ -n "$h" ] || fail "no file offsets in:\n$(cat "$TMP/blobs")"
flip $((l1 + 4096 + 7))    # layer.0001, page 1
flip $((l1 + 3 * 4096))    # layer.0001, page 3
flip $((h + 10))           # head, page 0
run_ok "$TMP/plain" "$ZINC" info "$TMP/bad.zinc.h5"   # opening reads no page
expect_exit 1 "3 of " "$ZINC" info "$TMP/bad.zinc.h5" --verify
out=$("$ZINC" info "$TMP/bad.zinc.h5" --verify 2>&1)
for want in "blob layer.0001 page 1 (blob bytes 4096..8191, file offset $((l1 + 4096)))" \
            "blob layer.0001 page 3 (blob bytes 12288..16383, file offset $((l1 + 12288)))" \
            "blob head page 0 (blob bytes 0..4095, file offset $h)" \
            "$TMP/bad.zinc.h5: 3 of " "fail their CRC-32C check"; do
  [[ "$out" == *"$want"* ]] || fail "info --verify lacks '$want':\n$out"
done
CHECKS=$((CHECKS + 1))
