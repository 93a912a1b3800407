#!/usr/bin/env bash
# Runs one CLI test case (tests/cli/case_*.sh) against the real zinc binary.
# usage: run_cli_tests.sh CASE_FILE ZINC_BINARY FIXTURES_DIR
# A case calls the helpers below; the first failed expectation ends it with exit 1.
set -uo pipefail
case_file=$1
ZINC=$2
FIXTURES=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# These cases test the CPU backend (the reference): `zinc generate` defaults to cuda where a
# GPU is visible, so on the GPU machine a wrapper pins --backend cpu (mpirun runs it too).
REAL_ZINC=$ZINC
ZINC=$TMP/zinc
printf '#!/bin/sh\nif [ "$1" = generate ]; then shift; exec "%s" generate --backend cpu "$@"; fi\nexec "%s" "$@"\n' \
  "$REAL_ZINC" "$REAL_ZINC" >"$ZINC"
chmod +x "$ZINC"
CHECKS=0

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_exit CODE SUBSTRING CMD...: CMD exits with CODE and its stderr+stdout contain SUBSTRING.
expect_exit() {
  local code=$1 needle=$2; shift 2
  local out rc
  out=$(timeout 120 "$@" 2>&1); rc=$?
  [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code; output:\n$out"
  [[ "$out" == *"$needle"* ]] || fail "'$*' output lacks '$needle'; output:\n$out"
  CHECKS=$((CHECKS + 1))
}

# run_ok FILE CMD...: CMD succeeds; its stdout goes to FILE.
run_ok() {
  local file=$1; shift
  timeout 300 "$@" >"$file" 2>"$file.err" || fail "'$*' failed ($?):\n$(cat "$file" "$file.err")"
  CHECKS=$((CHECKS + 1))
}

# same_outputs A B: the "[i] output:" lines of two runs are identical and non-empty.
same_outputs() {
  local a b
  a=$(grep 'output:' "$1"); b=$(grep 'output:' "$2")
  [ -n "$a" ] || fail "$1 has no outputs"
  [ "$a" == "$b" ] || fail "outputs differ:\n--- $1\n$a\n--- $2\n$b"
  CHECKS=$((CHECKS + 1))
}

source "$case_file"
echo "$(basename "$case_file"): $CHECKS checks passed"
