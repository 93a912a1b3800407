#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) in the sanitized tree (launch/build_sanitized.sh:
# clang, ASan + UBSan; SAN_BUILD_DIR, default build-san/) and runs each for SECONDS (default
# 60) from its committed corpus and seeds (CI is to run it with the default: DESIGN.md 11). New inputs go to a
# temporary directory, not into the repository. Exit 1 if any target found a crash, leak or
# timeout (the input is kept in FUZZ_ARTIFACTS, default build-san/artifacts/, with each
# run's log).
#   bash launch/fuzz.sh [SECONDS] [TARGET ...]     targets: safetensors safetensors_index
#                                                  config tokenizer store_meta (default all)
# Long runs (launch/results/fuzz-*.md): FUZZ_RUNS=N stops a target after N executions (or
# SECONDS, whichever comes first), FUZZ_CORPUS_OUT=DIR keeps what it found in DIR/TARGET
# (to merge into tests/fuzz/corpus with -merge=1, docs/DESIGN.md section 11).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SAN_BUILD_DIR:-$root/build-san}
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(safetensors safetensors_index config tokenizer store_meta)
artifacts=${FUZZ_ARTIFACTS:-$build/artifacts}

bash "$root/launch/build_sanitized.sh" zinc_fuzz

mkdir -p "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  if [ -n "${FUZZ_CORPUS_OUT:-}" ]; then
    work=$FUZZ_CORPUS_OUT/$t
    mkdir -p "$work"
  else
    work=$(mktemp -d)
  fi
  log="$artifacts/fuzz_$t.log"
  inputs=()
  for d in "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/seeds/$t"; do
    [ -d "$d" ] && inputs+=("$d")
  done
  echo "fuzz_$t: ${seconds}s"
  set +e
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -runs="${FUZZ_RUNS:--1}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -dict="$root/tests/fuzz/zinc.dict" -artifact_prefix="$artifacts/$t-" \
    "$work" "${inputs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  [ -n "${FUZZ_CORPUS_OUT:-}" ] || rm -rf "$work"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 || true)
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o '[0-9]* second' | tr -dc 0-9 || true)
  echo "  rc $rc, ${runs:-?} executions${took:+ in $took s}, ${cov:-no coverage line}"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    tail -40 "$log"
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: findings in ${failed[*]} (inputs under $artifacts)" >&2
  exit 1
fi
