# The NVMe tier's store changed under a running generation (--offload nvme reads every
# shard from the store at every use, O_DIRECT, each page checked against its CRC-32C):
#  - truncated to half: the next read past the end is an error naming the store and the
#    bytes missing ("the file is truncated");
#  - bytes of a blob overwritten: the read of that page fails its CRC-32C check, naming
#    the store, the blob and the page;
# and in both, the rank that saw it says so and every rank is gone within seconds (the
# peer waiting in the gather for it is ended by MPI_Abort), no process left behind. At np 2.
source "$(dirname "$case_file")/fault_util.sh"
run_ok "$TMP/convert.out" "$ZINC" convert --model dummy:tiny-llama --out "$TMP/clean.zinc.h5"
# The file offset of layer.0001's data, from `zinc info --blobs`.
offset=$("$ZINC" info "$TMP/clean.zinc.h5" --blobs | awk '$1 == "layer.0001" {print $NF}')
[ -n "$offset" ] || fail "no file offset for layer.0001 in zinc info --blobs"
size=$(stat -c %s "$TMP/clean.zinc.h5")
for fault in truncated overwritten; do
  cp "$TMP/clean.zinc.h5" "$TMP/run.zinc.h5"
  start_job 2 generate --model "$TMP/run.zinc.h5" --offload nvme --max-new-tokens 4000 \
    --prompt-ids 1,2,3 --prompt-ids 4,5
  wait_generating 2
  case $fault in
    truncated)
      truncate -s $((size / 2)) "$TMP/run.zinc.h5"
      want="is needed: the file is truncated";;
    overwritten)
      # 64 bytes at 100 bytes into the blob: rank 0's shard (the blob's first half).
      python3 -c "import os,sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); f.write(os.urandom(64)); f.close()" \
        "$TMP/run.zinc.h5" $((offset + 100))
      want="blob layer.0001 page 0 fails its CRC-32C check";;
  esac
  fault_now
  wait_gone 15
  [ "$JOB_RC" -ne 0 ] || fail "$fault: the job exited 0:\n$(cat "$TMP/job.out")"
  expect_job_output "$want"
  expect_job_output "$TMP/run.zinc.h5"
  grep -q "^zinc: error (rank [01]):" "$TMP/job.out" || fail "$fault: no rank's error message:\n$(cat "$TMP/job.out")"
  no_strays
  echo "store $fault under the run: every rank gone ${GONE_S} s after the fault; $(grep -m1 -o "^zinc: error (rank [01])" "$TMP/job.out")"
done
