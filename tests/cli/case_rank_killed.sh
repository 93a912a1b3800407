# A rank killed mid-generation (kill -9) ends the job at once: Open MPI sees the process
# die and ends the others, and mpirun says which rank died and how; nothing may keep a
# rank alive afterwards (the watchdog's thread, a destructor joining the weight loader).
# At np 2, 3 and 4, killing the last rank, rank 0 and a middle one.
source "$(dirname "$case_file")/fault_util.sh"
for spec in "2 1" "3 0" "4 2"; do
  read -r np victim <<<"$spec"
  start_job "$np" generate --model dummy:tiny-llama --max-new-tokens 4000 \
    --prompt-ids 1,2,3 --prompt-ids 4,5 --prompt-ids 6 --prompt-ids 7,8,9,10
  wait_generating "$np"
  kill -9 "$(rank_pid "$victim")"
  fault_now
  wait_gone 10
  [ "$JOB_RC" -ne 0 ] || fail "np $np: the job exited 0 with rank $victim killed:\n$(cat "$TMP/job.out")"
  expect_job_output "process rank $victim with PID"
  expect_job_output "exited on signal 9 (Killed)"
  no_strays
  echo "np $np, rank $victim killed: every rank gone ${GONE_S} s after the kill"
done
