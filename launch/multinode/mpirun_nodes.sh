#!/usr/bin/env bash
# mpirun over N simulated nodes of this machine (multi-node by simulation, issue 14): a
# hostfile of zinc-node-1 .. zinc-node-N with P slots each, ranks launched on them through
# fake_ssh (one UTS namespace per node), Open MPI's TCP transport over loopback between all
# ranks (no shared memory across the "nodes"), so the hostfile, node-local rank and
# multi-node paths run as on a cluster. Root only.
# usage: launch/multinode/mpirun_nodes.sh NODES RANKS_PER_NODE COMMAND...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nodes=${1:?usage: mpirun_nodes.sh NODES RANKS_PER_NODE COMMAND...}
per=${2:?usage: mpirun_nodes.sh NODES RANKS_PER_NODE COMMAND...}
shift 2
hosts=$(mktemp)
trap 'rm -f "$hosts"' EXIT
for i in $(seq "$nodes"); do echo "zinc-node-$i slots=$per"; done >"$hosts"
env=()
for v in OMP_NUM_THREADS OPENBLAS_NUM_THREADS LD_LIBRARY_PATH; do [ -n "${!v:-}" ] && env+=(-x "$v"); done
mpirun --hostfile "$hosts" -np $((nodes * per)) --map-by "ppr:$per:node" --bind-to none \
  --mca plm_rsh_agent "$here/fake_ssh" --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo \
  "${env[@]}" "$@"
