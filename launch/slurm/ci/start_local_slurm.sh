#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine for zinc's tests (root; Debian 12's
# slurm-wlm and munge, installed by launch/setup.sh), from slurm.conf.in beside this script.
# usage: source <(launch/slurm/ci/start_local_slurm.sh DIR)   -> exports SLURM_CONF
#        launch/slurm/ci/start_local_slurm.sh --stop DIR
# DIR holds the filled config, the state, the spool and the logs; the ports are the first
# free pair from 16817 (ZINC_SLURM_PORT). Waits until the node is
# idle (30 s at most), else prints the daemons' logs and exits 1. Idempotent: a cluster
# already running from DIR is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = --stop ]; then
  dir=$2
  for d in slurmd slurmctld; do [ -f "$dir/$d.pid" ] && kill "$(cat "$dir/$d.pid")" 2>/dev/null || true; done
  exit 0
fi
dir=${1:?usage: start_local_slurm.sh DIR}
mkdir -p "$dir/state" "$dir/spool"
host=$(hostname -s)
conf=$dir/slurm.conf
if ! { [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; }; then
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  # Ports nothing listens on (another test cluster may run beside this one).
  listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  port=${ZINC_SLURM_PORT:-16817}
  while listening "$port" || listening $((port + 1)); do port=$((port + 10)); done
  sed -e "s|@HOST@|$host|g" -e "s|@DIR@|$dir|g" -e "s|@CPUS@|${ZINC_SLURM_CPUS:-8}|g" -e "s|@MEM@|$mem|g" \
      -e "s|@PORT@|$port|g" -e "s|@DPORT@|$((port + 1))|g" \
      "$here/slurm.conf.in" >"$conf"
  # munge: a key once, the daemon if it is not running.
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge && dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force
  slurmctld -f "$conf" -i
  slurmd -f "$conf"
fi
export SLURM_CONF=$conf
for _ in $(seq 60); do
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
  [ "$state" = idle ] || [ "$state" = mix ] || [ "$state" = alloc ] && { echo "export SLURM_CONF=$conf"; exit 0; }
  sleep 0.5
done
echo "start_local_slurm: the node is '${state:-unknown}' after 30 s; logs:" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
exit 1
