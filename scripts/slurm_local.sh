#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for testing `lrtop tune
# --executor slurm` against a real scheduler.
#
#   scripts/slurm_local.sh start DIR   # munged, slurmctld, slurmd; state in DIR
#   scripts/slurm_local.sh stop DIR    # stops all three
#
# After `start`, point the client commands at it with
#   export SLURM_CONF=DIR/slurm.conf
# (`start` prints that line). The node has 2 CPUs (or SLURM_LOCAL_CPUS), runs
# jobs as the calling user, and needs root only because slurmd does. Nothing
# is written outside DIR. Debian: apt-get install -y slurm-wlm munge.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

stop() {
  local d=$1 pids=() pidfile pid
  # All three told at once: one after another took 5 s (each needs 1.5-2 s
  # to exit), and the tests start and stop a cluster each.
  for pidfile in "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munge/munged.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    rm -f "$pidfile"
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
stop)
  stop "$dir"
  exit 0
  ;;
start) ;;
*) usage ;;
esac

for tool in munged slurmctld slurmd sbatch squeue scontrol; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "slurm_local: $tool not found (Debian: apt-get install -y slurm-wlm munge)" >&2
    exit 3
  fi
done
PATH="$PATH:/usr/sbin"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir/munge"

command -v python3 >/dev/null || { echo "slurm_local: python3 is needed (to find free ports)" >&2; exit 3; }

# From here on a failure stops whatever was started.
trap 'stop "$dir"' ERR

# munge: a fresh key, its own socket.
key="$dir/munge/munge.key"
head -c 1024 /dev/urandom >"$key"
chmod 400 "$key"
munged --force --key-file="$key" --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
  --seed-file="$dir/munge/munged.seed"
for _ in $(seq 50); do
  [ -S "$dir/munge/munge.socket" ] && break
  sleep 0.1
done

host=$(hostname -s)
cpus=${SLURM_LOCAL_CPUS:-2}
user=$(id -un)
cat >"$dir/slurm.conf" <<EOF
ClusterName=lrtop-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
# Start a queued batch job at once, not up to 3 s later (the default delay
# is for clusters flooded with submissions): an array throttled to one task
# at a time (%1) took 12 s for four 20 ms tasks, 4 s with this.
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MinJobAge=3600
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

slurmctld -i -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$host"

# Up when the node takes work.
for _ in $(seq 150); do
  state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)
  case "$state" in
  idle* | mix* | alloc*)
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
    ;;
  esac
  sleep 0.2
done
echo "slurm_local: the node did not come up (state: ${state:-none}); logs in $dir/log" >&2
tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
stop "$dir"
exit 1
