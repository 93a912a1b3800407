#!/usr/bin/env bash
# Tokenizer benchmark: single-thread encode throughput of runtime/tokenizer over
# tests/fixtures/tokenizer/corpus.txt repeated to >= 50 MB, for the byte-level and the
# SentencePiece-style fixture tokenizers (and real GPT-2 when ../shared/data/gpt2 exists).
# Builds only the zinc_tokenizer_bench target. Writes launch/results/tokenizer-cpu-DATE.md
# (+ .json next to it).
#   usage: launch/bench_tokenizer.sh [MIN_MB]    (BUILD_DIR default build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
min_mb=${1:-50}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${ZINC_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$build" --target zinc_tokenizer_bench >/dev/null
day=$(date +%F)
out="$root/launch/results/tokenizer-cpu-$day.md"
fx="$root/tests/fixtures/tokenizer"
gpt2="$root/../shared/data/gpt2"
toks=("bytelevel=$fx/bytelevel" "sentencepiece=$fx/sentencepiece")
[ -f "$gpt2/vocab.json" ] && toks+=("gpt2=$gpt2")
cmd=("$build/runtime/zinc_tokenizer_bench" --corpus "$fx/corpus.txt" --min-mb "$min_mb" --runs 5
     --json "${out%.md}.json" "${toks[@]}")
body=$("${cmd[@]}")
{
  echo "# Tokenizer encode throughput on the CPU — $day"
  echo
  echo "Machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $(free -g | awk '/Mem:/{print $2}') GiB;"
  echo "commit $(git -C "$root" rev-parse --short HEAD); made by launch/bench_tokenizer.sh; load average"
  echo "at the start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: 'cpu MB/s' divides by"
  echo "the process's CPU seconds instead of wall seconds)."
  echo
  echo "Command:"
  echo '```'
  echo "\$ ${cmd[*]}" | sed "s|$root/||g; s|$build/|build/|g"
  echo '```'
  echo
  echo "Corpus: tests/fixtures/tokenizer/corpus.txt (10,000 lines, $(wc -c <"$fx/corpus.txt") bytes: English-like"
  echo "text, accents, Greek, Cyrillic, CJK, emoji, code, digits, whitespace runs), encoded line by line"
  echo "with add_special_tokens=true, single thread. bytelevel / sentencepiece: the 2,000-token fixture"
  echo "tokenizers (GPT-2-style byte-level BPE; LLaMA-2-style BPE with byte fallback and no"
  echo "pre-tokenizer, so every line is one BPE word); gpt2: the real 50,257-token GPT-2 vocabulary."
  echo "cold = first pass after loading (empty word cache); encode = median of 5 timed runs of"
  echo "PASSES passes after one warm-up run; MB/s = text bytes / seconds / 1e6."
  echo
  echo '```'
  echo "$body"
  echo '```'
} >"$out"
sed -i "s|$root/||g; s|$build/|build/|g" "${out%.md}.json"
cat "$out"
