# launch/slurm/zinc.sbatch against a real single-node Slurm (slurmctld + slurmd + munge,
# started by launch/run_tests.sh through launch/slurm/ci/start_local_slurm.sh, which exports
# SLURM_CONF and ZINC_REQUIRE_SLURM=1): the template at 2 and 4 tasks with the CPU backend,
# the job COMPLETED with exit 0, its run folder written, and its tokens equal an mpirun
# run's. Without a cluster (a machine where run_tests.sh could not start one) it says SKIP.
ROOT=$(cd "$(dirname "$case_file")/../.." && pwd)
if [ -z "${SLURM_CONF:-}" ] || ! command -v sbatch >/dev/null; then
  [ "${ZINC_REQUIRE_SLURM:-0}" = 1 ] && fail "ZINC_REQUIRE_SLURM=1 but no cluster: SLURM_CONF='${SLURM_CONF:-}'"
  echo "SKIP: no local Slurm cluster (launch/slurm/ci/start_local_slurm.sh)"
  exit 0
fi
M="$FIXTURES/llama_gqa"
ARGS="--prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --prompt-ids 16,17 --max-new-tokens 4"
for n in 2 4; do
  # shellcheck disable=SC2086
  run_ok "$TMP/mpirun.$n" mpirun -np $n "$ZINC" generate --model "$M" $ARGS
  cd "$TMP"
  out=$(ZINC="$ZINC" MODEL="$M" ARGS="$ARGS" RUN_ROOT="$TMP/runs" timeout 300 \
    sbatch --parsable --wait --job-name "zinc-ci-$n" --ntasks $n --ntasks-per-node $n "$ROOT/launch/slurm/zinc.sbatch") ||
    fail "sbatch --wait at $n tasks failed ($?): $out\n$(cat "$TMP"/zinc-*.out 2>/dev/null)"
  id=${out%%;*}
  cd - >/dev/null
  state=$(scontrol show job "$id" | grep -o 'JobState=[A-Z]*')
  code=$(scontrol show job "$id" | grep -o ' ExitCode=[0-9:]*')
  [ "$state" = JobState=COMPLETED ] && [ "$code" = " ExitCode=0:0" ] || fail "job $id: $state$code\n$(cat "$TMP/zinc-$id.out")"
  grep -q "^job $id: $n tasks on 1 node" "$TMP/zinc-$id.out" || fail "job $id's header:\n$(cat "$TMP/zinc-$id.out")"
  [ -s "$TMP/runs/zinc-ci-$n-$id/metrics.json" ] || fail "job $id wrote no metrics JSON in its run folder"
  same_outputs "$TMP/mpirun.$n" "$TMP/runs/zinc-ci-$n-$id/output.txt"
done
