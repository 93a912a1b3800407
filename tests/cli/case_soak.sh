# A soak: 1,000 decode steps at np 2 (dummy tiny-llama on the CPU backend, one sequence
# per rank, about 5 s) with host and backend memory flat after the first steps:
#  - each rank's RSS (/proc/PID/status VmRSS, sampled every 0.1 s from the first decode
#    steps to the end of the generation) grows by no more than the KV cache it fills meanwhile (allocated
#    once at the start, its pages touched as the tokens are written) plus 1 MiB;
#  - the backend arena's high-water mark less the KV cache and the weights is the same
#    after 50 steps as after 1,000 (--metrics-json): nothing else grows with the steps.
source "$(dirname "$case_file")/fault_util.sh"
PROMPTS=(--prompt-ids 1,2,3,4,5,6,7,8 --prompt-ids 9,10,11)
# arena_rest FILE: peak_backend_bytes - kv_cache_bytes - weight_bytes of a metrics JSON.
arena_rest() {
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['peak_backend_bytes'] - d['kv_cache_bytes'] - d['weight_bytes'])" "$1"
}
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

start_job 2 generate --model dummy:tiny-llama --max-new-tokens 51 "${PROMPTS[@]}"
fault_now; wait_gone 120
[ "$JOB_RC" -eq 0 ] || fail "the short run failed:\n$(cat "$TMP/job.out")"
short_rest=$(arena_rest "$TMP/job.json")

start_job 2 generate --model dummy:tiny-llama --max-new-tokens 1001 "${PROMPTS[@]}"
wait_generating 2
pids=("$(rank_pid 0)" "$(rank_pid 1)")
first=() last=()
for i in 0 1; do first[i]=$(awk '/^VmRSS/ {print $2}' "/proc/${pids[i]}/status"); last[i]=${first[i]}; done
samples=0
# Until the generation is over (the loader thread goes with the model, after the results
# are out): the process's exit (MPI_Finalize) is no part of the soak.
while has_loader "${pids[0]}" && has_loader "${pids[1]}"; do
  for i in 0 1; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/${pids[i]}/status" 2>/dev/null)
    [ -n "$rss" ] && [ "$rss" -gt 0 ] && last[i]=$rss
  done
  samples=$((samples + 1))
  sleep 0.1
done
fault_now; wait_gone 120
[ "$JOB_RC" -eq 0 ] || fail "the soak failed:\n$(cat "$TMP/job.out")"
steps=$(json_field "$TMP/job.json" decode_steps)
[ "$steps" -eq 2000 ] || fail "the soak ran $steps decode steps over 2 ranks, expected 2 x 1000"
kv_kib=$(( $(json_field "$TMP/job.json" kv_cache_bytes) / 1024 ))
[ "$samples" -ge 10 ] || fail "only $samples RSS samples: the run was too short to watch"
if sanitized_build; then
  echo "SKIP: the RSS check under AddressSanitizer (its quarantine keeps freed memory resident)"
else
  for i in 0 1; do
    grew=$((last[i] - first[i]))
    [ "$grew" -le $((kv_kib + 1024)) ] ||
      fail "rank $i's RSS grew by $grew KiB over the soak (from ${first[i]} to ${last[i]} KiB); its KV cache is $kv_kib KiB"
    echo "rank $i: RSS ${first[i]} -> ${last[i]} KiB over 1,000 decode steps ($samples samples): +$grew KiB, KV cache $kv_kib KiB"
  done
  CHECKS=$((CHECKS + 1))
fi
long_rest=$(arena_rest "$TMP/job.json")
[ "$long_rest" -eq "$short_rest" ] ||
  fail "the arena's high water less KV and weights is $long_rest bytes after 1,000 steps, $short_rest after 50"
echo "arena high water less KV cache and weights: $long_rest bytes after 50 and after 1,000 steps"
CHECKS=$((CHECKS + 1))
