# A rank stuck in I/O: its NVMe reader threads never return (held with ptrace while the
# rest of the process runs, as a read from a dead disk would), mid-generation at np 2.
# Its peer waits in the all-gather, its own compute thread for the weights; after
# --collective-timeout the watchdog names the stuck rank as behind ("rank 1 did not
# arrive: it has entered N collectives of communicator C, not yet number N+1", with what it
# waits for) and ends the job within seconds; nothing is left behind.
# Skipped where ptrace is not permitted.
source "$(dirname "$case_file")/fault_util.sh"
TIMEOUT_S=3
run_ok "$TMP/convert.out" "$ZINC" convert --model dummy:tiny-llama --out "$TMP/s.zinc.h5"
start_job 2 generate --model "$TMP/s.zinc.h5" --offload nvme --max-new-tokens 4000 --collective-timeout $TIMEOUT_S \
  --prompt-ids 1,2,3 --prompt-ids 4,5
wait_generating 2
: >"$TMP/hold.out"
python3 "$(dirname "$case_file")/hold_threads.py" "$(rank_pid 1)" zinc-nvme-read >"$TMP/hold.out" 2>&1 &
HOLD=$!
for _ in $(seq 50); do grep -q "^held\|^ptrace" "$TMP/hold.out" && break; sleep 0.1; done
if grep -q "^ptrace" "$TMP/hold.out"; then
  kill_job
  echo "SKIP: $(cat "$TMP/hold.out") (ptrace is needed to hold a rank's I/O threads)"
  return 0
fi
grep -q "^held" "$TMP/hold.out" || { kill_job; fail "could not hold rank 1's reader threads: $(cat "$TMP/hold.out")"; }
fault_now
wait_gone $((TIMEOUT_S + 30))
wait "$HOLD"
[ "$JOB_RC" -ne 0 ] || fail "the job exited 0 with rank 1's reads held:\n$(cat "$TMP/job.out")"
expect_job_output "rank 1 did not arrive"
# Rank 1's watchdog answers: it is behind (where its loader stopped depends on where the
# readers were held: in the read, or waking in a condition variable that the loader's
# notify then waits for, a glibc detail of a thread stopped there).
expect_job_output "rank 1: did not arrive: it has entered"
no_strays
echo "rank 1's NVMe reads held: every rank gone ${GONE_S} s after (--collective-timeout $TIMEOUT_S);" \
  "$(grep -o "rank 1: did not arrive: .*" "$TMP/job.out" | head -1)"
