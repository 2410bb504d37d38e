#!/usr/bin/env bash
# Start a throwaway one-node Slurm cluster on this machine (Debian 12 packages, no systemd, no cgroups),
# with MariaDB + slurmdbd on loopback so sacct works (submitit needs it to see cancelled or killed jobs).
# Prints `export SLURM_CONF=...`; writes its state under $MLIPILOT_SLURM_DIR (default /tmp/mlipilot-slurm).
set -euo pipefail
DIR=${MLIPILOT_SLURM_DIR:-/tmp/mlipilot-slurm}
HOST=$(hostname -s)
PKGS="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
log() { echo "[slurm-cluster] $*" >&2; }

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  log "installing $PKGS"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PKGS >/dev/null
fi
mkdir -p "$DIR"/{etc,log,spool/ctld,spool/d,run,mysql} /run/munge /run/mysqld
chown munge:munge /run/munge; chown mysql:mysql /run/mysqld "$DIR/mysql"
for i in 0 1; do ln -sf /dev/null "$DIR/fakegpu$i"; done   # a GPU GRES needs File=, or the node goes INVAL

# munge (credentials)
[ -s /etc/munge/munge.key ] || (dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null && chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key)
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

# MariaDB on loopback for accounting
if [ ! -d "$DIR/mysql/mysql" ]; then
  mariadb-install-db --user=mysql --datadir="$DIR/mysql" >/dev/null 2>&1
fi
if ! pgrep -x mariadbd >/dev/null; then
  (mariadbd --user=mysql --datadir="$DIR/mysql" --bind-address=127.0.0.1 --socket=/run/mysqld/mysqld.sock \
     --pid-file=/run/mysqld/mariadb.pid >"$DIR/log/mariadb.log" 2>&1 &)
fi
for _ in $(seq 60); do mariadb -e "select 1" >/dev/null 2>&1 && break; sleep 0.5; done
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

MEM=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 2048 ))
CPUS=$(nproc --all)  # plain nproc honours OMP_NUM_THREADS, which .ci/run sets to 1
cat > "$DIR/etc/slurm.conf" <<CONF
ClusterName=mlipilot
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
ReturnToService=2
MinJobAge=60
KillWait=5
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$DIR/etc/gres.conf" <<CONF
NodeName=$HOST Name=gpu File=$DIR/fakegpu[0-1]
CONF
cat > "$DIR/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
CONF
chmod 600 "$DIR/etc/slurmdbd.conf"
export SLURM_CONF="$DIR/etc/slurm.conf"

pgrep -x slurmdbd >/dev/null || slurmdbd   # reads slurmdbd.conf beside $SLURM_CONF
for _ in $(seq 60); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.5; done
sacctmgr -i add cluster mlipilot >/dev/null 2>&1 || true
pgrep -x slurmctld >/dev/null || slurmctld -f "$SLURM_CONF"
pgrep -x slurmd >/dev/null || slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  state=$(sinfo -h -N -o %T 2>/dev/null | head -n1)
  [ "$state" = "idle" ] && break
  sleep 0.5
done
if [ "$state" != "idle" ]; then
  log "node did not become idle (state: ${state:-none}); logs in $DIR/log"; sinfo -N -l >&2 || true; exit 1
fi
log "cluster up: node $HOST idle, $CPUS CPUs, ${MEM} MB, 2 fake GPUs; SLURM_CONF=$SLURM_CONF"
echo "export SLURM_CONF=$SLURM_CONF"
