# zinc convert --out: the output is a new path or, with --force, a regular file that is not
# one of the inputs. Anything else (the input itself, a hard or symbolic link to it, a
# device, a FIFO, a directory, an existing file without --force) is refused before any work,
# naming the path, and is left exactly as it was.
M="$TMP/m"
cp -r "$FIXTURES/llama_mha" "$M"   # one model.safetensors; group 32 divides every row
C=(convert --model "$M" --quant nf4 --group-size 32)
same_file() { cmp -s "$1" "$2" || fail "$1 was changed"; CHECKS=$((CHECKS + 1)); }

# The input checkpoint and config, by their own path and through links (device + inode).
expect_exit 1 "$M/model.safetensors: is an input" "$ZINC" "${C[@]}" --out "$M/model.safetensors"
expect_exit 1 "is an input" "$ZINC" "${C[@]}" --out "$M/model.safetensors" --force
same_file "$M/model.safetensors" "$FIXTURES/llama_mha/model.safetensors"
ln "$M/model.safetensors" "$TMP/hard.safetensors"
expect_exit 1 "$TMP/hard.safetensors: is an input" "$ZINC" "${C[@]}" --out "$TMP/hard.safetensors" --force
ln -s "$M/config.json" "$TMP/soft.json"
expect_exit 1 "$TMP/soft.json: is an input" "$ZINC" "${C[@]}" --out "$TMP/soft.json" --force
same_file "$M/model.safetensors" "$FIXTURES/llama_mha/model.safetensors"
same_file "$M/config.json" "$FIXTURES/llama_mha/config.json"
[ -L "$TMP/soft.json" ] || fail "the symbolic link was replaced"
# A shard of a sharded checkpoint (named by its index) is an input too.
G="$TMP/g"
cp -r "$FIXTURES/llama_gqa" "$G"
expect_exit 1 "$G/model-00002-of-00002.safetensors: is an input" "$ZINC" convert --model "$G" --group-size 32 \
  --out "$G/model-00002-of-00002.safetensors" --force
same_file "$G/model-00002-of-00002.safetensors" "$FIXTURES/llama_gqa/model-00002-of-00002.safetensors"
# The temporary OUT.tmp may not be an input either (its name is OUT + .tmp).
ln "$M/model.safetensors" "$TMP/alias.tmp"
expect_exit 1 "$TMP/alias.tmp: is an input" "$ZINC" "${C[@]}" --out "$TMP/alias"
same_file "$TMP/alias.tmp" "$FIXTURES/llama_mha/model.safetensors"

# Not regular files: a device node (made here, never the system's /dev/null), a FIFO, a
# directory. None is replaced, with or without --force.
if mknod "$TMP/null" c 1 3 2>/dev/null; then
  expect_exit 1 "$TMP/null: not a regular file (a character device)" "$ZINC" "${C[@]}" --out "$TMP/null" --force
  [ -c "$TMP/null" ] || fail "the device node was replaced"
else
  echo "skipped: mknod not permitted here: the device-node case is not run"
fi
mkfifo "$TMP/fifo"
expect_exit 1 "$TMP/fifo: not a regular file (a FIFO)" "$ZINC" "${C[@]}" --out "$TMP/fifo" --force
[ -p "$TMP/fifo" ] || fail "the FIFO was replaced"
mkdir "$TMP/dir"
expect_exit 1 "$TMP/dir: not a regular file (a directory)" "$ZINC" "${C[@]}" --out "$TMP/dir" --force
[ -d "$TMP/dir" ] || fail "the directory was replaced"

# An existing regular file: refused without --force (and left as it was), replaced with it.
echo "my notes" >"$TMP/notes.txt"
expect_exit 1 "$TMP/notes.txt: already exists; pass --force" "$ZINC" "${C[@]}" --out "$TMP/notes.txt"
[ "$(cat "$TMP/notes.txt")" = "my notes" ] || fail "notes.txt was changed"
run_ok "$TMP/c1" "$ZINC" "${C[@]}" --out "$TMP/a.zinc.h5"
expect_exit 1 "already exists" "$ZINC" "${C[@]}" --out "$TMP/a.zinc.h5"
run_ok "$TMP/c2" "$ZINC" "${C[@]}" --out "$TMP/a.zinc.h5" --force
run_ok "$TMP/info" "$ZINC" info "$TMP/a.zinc.h5"
[ ! -e "$TMP/a.zinc.h5.tmp" ] || fail "convert left $TMP/a.zinc.h5.tmp"
# A stale OUT.tmp (an interrupted convert) that is a regular file is replaced.
echo stale >"$TMP/b.zinc.h5.tmp"
run_ok "$TMP/c3" "$ZINC" "${C[@]}" --out "$TMP/b.zinc.h5"
[ ! -e "$TMP/b.zinc.h5.tmp" ] && [ -f "$TMP/b.zinc.h5" ] || fail "the stale temporary was not replaced"
