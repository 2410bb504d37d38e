#!/usr/bin/env bash
# Stop every daemon start_cluster.sh started (safe to call twice, or when nothing runs).
DIR=${MLIPILOT_SLURM_DIR:-/tmp/mlipilot-slurm}
export SLURM_CONF="$DIR/etc/slurm.conf"
[ -f "$SLURM_CONF" ] && scancel --user="$(id -un)" >/dev/null 2>&1
for d in slurmd slurmctld slurmdbd mariadbd munged; do pkill -x "$d" 2>/dev/null; done
running() { for d in slurmd slurmctld slurmdbd mariadbd munged; do pgrep -x "$d" >/dev/null && return 0; done; return 1; }
for _ in $(seq 20); do running || break; sleep 0.5; done
for d in slurmd slurmctld slurmdbd mariadbd munged; do pkill -9 -x "$d" 2>/dev/null; done
echo "[slurm-cluster] stopped" >&2
exit 0
