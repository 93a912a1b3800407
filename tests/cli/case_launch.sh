# launch/zinc-mpirun: the command it prints (one rank per GPU: ppr mapping, the NUMA
# launcher and -x variables when GPUs are counted; --bind-to none without), and a real
# run through it with the same tokens as plain mpirun.
ROOT=$(cd "$(dirname "$case_file")/../.." && pwd)
W="$ROOT/launch/zinc-mpirun"
out=$(ZINC_GPUS_PER_NODE=4 OMP_NUM_THREADS=1 "$W" --dry-run "$ZINC" generate 2>&1) || fail "zinc-mpirun --dry-run: $out"
[[ "$out" == *"mpirun -np 4 --map-by ppr:4:node --bind-to none"* && "$out" == *"-x OMP_NUM_THREADS"* &&
   "$out" == *"-x ZINC_GPUS_PER_NODE"* && "$out" == *"zinc-mpirun --bind-exec $ZINC generate"* ]] ||
  fail "zinc-mpirun with 4 GPUs printed: $out"
printf 'node1 slots=4\nnode2 slots=4\n# a comment\n' >"$TMP/hosts"
out=$(ZINC_GPUS_PER_NODE=4 "$W" --hostfile "$TMP/hosts" --dry-run "$ZINC" generate 2>&1)
[[ "$out" == *"mpirun -np 8 --map-by ppr:4:node"*"--hostfile $TMP/hosts"* ]] || fail "two nodes of 4 GPUs: $out"
out=$(ZINC_GPUS_PER_NODE=0 "$W" --dry-run "$ZINC" generate 2>&1)
[[ "$out" == *"mpirun -np 1 --bind-to none"* && "$out" != *"--bind-exec"* ]] || fail "no GPUs: $out"
P=(--model "$FIXTURES/llama_gqa" --prompt-ids 5,6,7,8 --prompt-ids 9 --max-new-tokens 4)
run_ok "$TMP/plain" mpirun -np 2 "$ZINC" generate "${P[@]}"
ZINC_GPUS_PER_NODE=0 run_ok "$TMP/wrapped" "$W" -np 2 "$ZINC" generate "${P[@]}"
same_outputs "$TMP/plain" "$TMP/wrapped"
grep -q "^zinc-mpirun: mpirun -np 2 --bind-to none" "$TMP/wrapped.err" || fail "the command was not printed:\n$(cat "$TMP/wrapped.err")"
expect_exit 2 "usage: launch/zinc-mpirun" "$W" -np 2
