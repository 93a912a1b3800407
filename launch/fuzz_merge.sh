#!/usr/bin/env bash
# Adds to tests/fuzz/corpus/TARGET the inputs of FOUND (a long run's FUZZ_CORPUS_OUT/TARGET,
# launch/fuzz.sh; several directories for several runs) that reach code the seeds and the
# committed corpus do not: libFuzzer's -merge=1 counts what is already in its first
# directory first, then takes the fewest and smallest of the new inputs that add coverage.
# Edges only (-use_counters=0): a long run's hit-count features would keep ~5x the inputs
# (3 MB for fuzz_tokenizer alone), and every edge it reached stays reached. The committed
# inputs are kept as they are (regress-* among them). Uses the sanitized tree's target
# (SAN_BUILD_DIR, default build-san/).
#   bash launch/fuzz_merge.sh TARGET FOUND [FOUND ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SAN_BUILD_DIR:-$root/build-san}
[ $# -ge 2 ] || { echo "usage: bash launch/fuzz_merge.sh TARGET FOUND [FOUND ...]" >&2; exit 2; }
target=$1
shift
found=("$@")
corpus=$root/tests/fuzz/corpus/$target

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
base=$tmp/inputs
mkdir "$base"
for d in "$root/tests/fuzz/seeds/$target" "$corpus"; do
  [ -d "$d" ] && cp -r "$d"/. "$base"/
done
ls "$base" | sort >"$tmp/before"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
"$build/tests/fuzz/fuzz_$target" -merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 \
  -dict="$root/tests/fuzz/zinc.dict" "$base" "${found[@]}" >"$tmp/log" 2>&1 || {
  tail -20 "$tmp/log"
  exit 1
}
mkdir -p "$corpus"
added=0
while read -r f; do
  mv "$base/$f" "$corpus/"
  added=$((added + 1))
done < <(ls "$base" | sort | comm -13 "$tmp/before" -)
echo "fuzz_$target: $added inputs added, corpus now $(ls "$corpus" | wc -l) files, $(du -sh "$corpus" | cut -f1)"
