# A stopped rank (kill -STOP mid-generation; a rank stuck in I/O looks the same to its
# peers) ends the job: after --collective-timeout the watchdog of a waiting rank names the
# stopped rank ("rank R did not arrive ... no answer"), and MPI_Abort ends every rank,
# the stopped one included, well within the 30 s promised after the limit. Meanwhile the
# waiting ranks do not spin (Open MPI's blocking calls did, at 100% of a core). At np 2,
# 3 and 4, stopping the last rank, rank 0 (the verdict then comes from rank 1) and a middle one.
source "$(dirname "$case_file")/fault_util.sh"
expect_exit 2 "--collective-timeout must be a number of seconds >= 0" \
  "$ZINC" generate --model dummy:tiny-llama --prompt-ids 1 --collective-timeout -1
TIMEOUT_S=3
for spec in "2 1" "3 0" "4 2"; do
  read -r np stopped <<<"$spec"
  start_job "$np" generate --model dummy:tiny-llama --max-new-tokens 4000 --collective-timeout $TIMEOUT_S \
    --prompt-ids 1,2,3 --prompt-ids 4,5 --prompt-ids 6 --prompt-ids 7,8,9,10
  wait_generating "$np"
  kill -STOP "$(rank_pid "$stopped")"
  fault_now
  waiting=$(rank_pid $(((stopped + 1) % np)))
  busy=$(cpu_busy "$waiting" 1)
  [ "$busy" -lt 25 ] || { kill_job; fail "np $np: a rank waiting for the stopped one used ${busy}% of a core"; }
  wait_gone $((TIMEOUT_S + 30))
  [ "$JOB_RC" -ne 0 ] || fail "np $np: the job exited 0 with rank $stopped stopped:\n$(cat "$TMP/job.out")"
  expect_job_output "rank $stopped did not arrive"
  expect_job_output "rank $stopped: did not arrive: no answer within"
  expect_job_output "ends the job"
  no_strays
  echo "np $np, rank $stopped stopped: a waiting rank used ${busy}% of a core; every rank gone ${GONE_S} s after the stop (--collective-timeout $TIMEOUT_S)"
done
