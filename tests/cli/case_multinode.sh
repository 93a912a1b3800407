# Multi-node by simulation (launch/multinode/): 2 nodes x 2 ranks and 2 nodes x 1 rank of
# this machine (UTS namespaces, TCP between the ranks): zinc sees 2 nodes with 2 (or 1)
# ranks each, and its tokens equal a one-node run's at the same rank count, for the
# ZeRO-3 weight stream and the host KV path. Root only (unshare): else SKIP.
ROOT=$(cd "$(dirname "$case_file")/../.." && pwd)
if [ "$(id -u)" -ne 0 ] || ! unshare --uts true 2>/dev/null; then
  echo "SKIP: simulated nodes need root (unshare --uts)"
  exit 0
fi
M="$FIXTURES/llama_gqa"
P=(--model "$M" --prompt-ids 5,6,7,8 --prompt-ids 9 --prompt-ids 10,11,12,13,14,15 --prompt-ids 16,17 --max-new-tokens 4)
for shape in "2 2" "2 1"; do
  set -- $shape
  n=$(($1 * $2))
  run_ok "$TMP/one.$n" mpirun -np $n "$ZINC" generate "${P[@]}" --kv-offload
  run_ok "$TMP/multi.$n" "$ROOT/launch/multinode/mpirun_nodes.sh" "$1" "$2" "$ZINC" generate "${P[@]}" --kv-offload \
    --metrics-json "$TMP/multi.$n.json"
  same_outputs "$TMP/one.$n" "$TMP/multi.$n"
  grep -q "on $n ranks ($1 nodes)" "$TMP/multi.$n" || fail "not $1 nodes:\n$(head -3 "$TMP/multi.$n")"
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['nodes'] == $1 and j['ranks_per_node_rank0'] == $2, j" \
    "$TMP/multi.$n.json" || fail "metrics JSON nodes / ranks per node"
done
