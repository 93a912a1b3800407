# Helpers of the fault cases (case_rank_*.sh, case_nvme_faults.sh, case_soak.sh), sourced
# by them after run_cli_tests.sh's helpers: start a job in the background, find its ranks'
# processes, wait until it generates, and check that it ends in time leaving nothing behind.
#
# A job's processes are found by $TMP in their command lines (every job here is given a
# --metrics-json under $TMP), so cases that ctest runs in parallel never see each other's.

# start_job NP ARGS...: `mpirun -np NP $ZINC ARGS... --metrics-json $TMP/job.json` in the
# background; its output goes to $TMP/job.out, its pid to JOB.
start_job() {
  local np=$1; shift
  rm -f "$TMP/job.json"
  mpirun -np "$np" "$ZINC" "$@" --metrics-json "$TMP/job.json" >"$TMP/job.out" 2>&1 &
  JOB=$!
  JOB_T0=$(date +%s.%N)
}

# job_pids: the pids of the job's processes still alive (mpirun included).
job_pids() { pgrep -f -- "$TMP/job.json" || true; }

# rank_pid R: the pid of rank R's process (empty if none).
rank_pid() {
  local p
  for p in $(pgrep -P "$JOB" 2>/dev/null); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
      echo "$p"
      return
    fi
  done
}

# has_loader PID: the process runs its weight loader thread (from the end of the load to
# the model's teardown, after the results are out).
has_loader() { grep -qx zinc-loader /proc/"$1"/task/*/comm 2>/dev/null; }

# wait_generating NP: waits (up to 60 s) until each of the NP ranks runs its weight loader
# thread ("zinc-loader": the model is loaded, the forwards have begun), then 0.5 s more.
wait_generating() {
  local np=$1 r p deadline=$((SECONDS + 60))
  for ((r = 0; r < np; ++r)); do
    while :; do
      p=$(rank_pid "$r")
      [ -n "$p" ] && has_loader "$p" && break
      kill -0 "$JOB" 2>/dev/null || fail "the job ended before rank $r generated:\n$(cat "$TMP/job.out")"
      [ $SECONDS -lt $deadline ] || { kill_job; fail "rank $r did not start generating in 60 s:\n$(cat "$TMP/job.out")"; }
      sleep 0.1
    done
  done
  sleep 0.5
  kill -0 "$JOB" 2>/dev/null || fail "the job ended before the fault (make it longer):\n$(cat "$TMP/job.out")"
}

# cpu_busy PID SECONDS: the percentage of one core PID used over SECONDS (from /proc/PID/stat).
cpu_busy() {
  local hz a b
  hz=$(getconf CLK_TCK)
  a=$(awk '{print $14 + $15}' "/proc/$1/stat")
  sleep "$2"
  b=$(awk '{print $14 + $15}' "/proc/$1/stat")
  echo $(((b - a) * 100 / hz / $2))
}

kill_job() {
  local p
  for p in $(job_pids); do kill -9 "$p" 2>/dev/null; done
  wait "$JOB" 2>/dev/null
}

# wait_gone LIMIT_S: waits for the job (mpirun and every rank) to end, at most LIMIT_S
# seconds after FAULT_T0; sets JOB_RC and GONE_S (seconds from the fault to the end).
wait_gone() {
  local limit=$1
  while [ -n "$(job_pids)" ]; do
    if [ "$(echo "$(date +%s.%N) - $FAULT_T0 > $limit" | bc)" = 1 ]; then
      local left; left=$(job_pids | tr '\n' ' ')
      kill_job
      fail "the job was still running ${limit} s after the fault (pids $left):\n$(cat "$TMP/job.out")"
    fi
    sleep 0.1
  done
  wait "$JOB"; JOB_RC=$?
  GONE_S=$(printf '%.2f' "$(echo "$(date +%s.%N) - $FAULT_T0" | bc)")
  CHECKS=$((CHECKS + 1))
}

# fault_now: marks the moment of the fault for wait_gone.
fault_now() { FAULT_T0=$(date +%s.%N); }

# expect_job_output SUBSTRING: the job's output holds it.
expect_job_output() {
  grep -qF -- "$1" "$TMP/job.out" || fail "the job's output lacks '$1':\n$(cat "$TMP/job.out")"
  CHECKS=$((CHECKS + 1))
}

# no_strays: no process of the job is left (it was checked gone; this checks again after a moment).
no_strays() {
  sleep 0.3
  local left; left=$(job_pids)
  [ -z "$left" ] || { kill_job; fail "processes left behind: $left"; }
  CHECKS=$((CHECKS + 1))
}

# sanitized_build: the binary runs under AddressSanitizer (gcc's libasan, or clang's
# static runtime), whose quarantine keeps freed memory resident: RSS then says nothing of leaks.
sanitized_build() {
  ldd "$REAL_ZINC" 2>/dev/null | grep -q libasan || nm "$REAL_ZINC" 2>/dev/null | grep -q " __asan_init"
}
