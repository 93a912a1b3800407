# zinc convert onto a disk that fills up: the write error names the store and the blob, the
# exit is 1 (not a crash in HDF5's exit handler), no progress line says "written" for data
# that did not fit, and nothing is left behind (no half store, no temporary).
# The disk: a 5 MiB tmpfs (mount needs root or CAP_SYS_ADMIN; skipped with a message where
# it is not permitted). The model's weights are 11.9 MiB (austen-melville-6m, --quant none).
MODEL="$(dirname "$case_file")/../../examples/models/austen-melville-6m"
FS=$TMP/fs
mkdir -p "$FS"
trap 'umount "$FS" 2>/dev/null; rm -rf "$TMP"' EXIT

# check_full LABEL REASON OUTPUT_FILE: the checks above on one run's output.
check_full() {
  local label=$1 reason=$2 out=$3
  [[ "$(cat "$out")" == *"$FS/x.zinc.h5.tmp"*"$reason"* ]] || fail "$label: no '$reason' naming the store:\n$(cat "$out")"
  ! grep -qiE "segmentation|signal" "$out" || fail "$label: crashed:\n$(cat "$out")"
  [ -z "$(ls -A "$FS")" ] || fail "$label: left $(ls -A "$FS") behind"
  # The blob being written when it failed has no "written" line, and the bytes said to be
  # written fit in the 5 MiB.
  local blob
  blob=$(grep -o "blob [a-z0-9.]*: " "$out" | head -1 | sed 's/blob //; s/: //')
  [ -n "$blob" ] || fail "$label: the error names no blob:\n$(cat "$out")"
  ! tr '\r' '\n' <"$out" | grep -qE "\] $blob +.* written" || fail "$label: blob $blob said written:\n$(cat "$out")"
  tr '\r' '\n' <"$out" | python3 -c '
import re, sys
units = {"B": 1, "KiB": 2**10, "MiB": 2**20}
said = [float(n) * units[u] for n, u in re.findall(r"([0-9.]+) (B|KiB|MiB) written", sys.stdin.read())]
assert not said or max(said) <= 5 * 2**20, said
' || fail "$label: more than 5 MiB said written:\n$(cat "$out")"
  CHECKS=$((CHECKS + 1))
}

C=(convert --model "$MODEL" --out "$FS/x.zinc.h5" --quant none)
if ! mount -t tmpfs -o size=5m zinc-test-full "$FS" 2>/dev/null; then
  echo "skipped: mount -t tmpfs is not permitted here (needs root): the full-disk case is not run"
  return 0
fi
out=$TMP/tmpfs.out
timeout 120 "$ZINC" "${C[@]}" >"$out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "exited $rc, expected 1:\n$(cat "$out")"
check_full tmpfs "No space left on device" "$out"
# The same disk with room again: the conversion then succeeds (nothing stale in the way).
run_ok "$TMP/small" "$ZINC" convert --model "$MODEL" --out "$FS/x.zinc.h5" --quant nf4 --group-size 16
run_ok "$TMP/info" "$ZINC" info "$FS/x.zinc.h5"
umount "$FS"
