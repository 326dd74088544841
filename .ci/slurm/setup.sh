#!/usr/bin/env bash
# .ci/slurm/setup.sh: start a real single-node SLURM cluster on this (Debian 12) machine for CI.
#
# Installs munge + slurm-wlm with apt-get (skipped when already installed), writes
# /etc/slurm/slurm.conf (+ gres.conf with one fake GPU) for one node sized from `nproc` and the
# memory SLURM detects, starts munged, slurmctld and slurmd by hand (no systemd needed), records
# their PIDs and waits until `sinfo` shows the node idle. Also installs the Snakemake SLURM
# executor plugin into the project venv when it is missing. Stop everything with teardown.sh.
#
# Needs root (apt-get, /etc/slurm, daemons run as root). Idempotent: a second call with the
# cluster already up only checks it. Environment knobs:
#   AEMT_SLURM_DIR       state, spool, logs and pid files        (default /tmp/aemt-slurm)
#   AEMT_SLURM_FAKE_GPU  1: node advertises gres gpu:1 backed by /dev/null so `--gpus=1` jobs are
#                        schedulable (they run on CPU); 0: CPU-only node          (default 1)
#   AEMT_SLURM_INSTALL   1: apt-get install when packages are missing; 0: never   (default 1)
#   AEMT_SLURM_PYTHON    python of the venv that runs snakemake (default .venv/bin/python)
#   AEMT_SLURM_PLUGIN    pip requirement for the executor plugin
#                        (default snakemake-executor-plugin-slurm==2.8.0; empty: skip pip)
# Why each setting: docs/slurm.md ("CI cluster") and ../shared/reference/slurm-ci.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BOX=${AEMT_SLURM_DIR:-/tmp/aemt-slurm}
FAKE_GPU=${AEMT_SLURM_FAKE_GPU:-1}
INSTALL=${AEMT_SLURM_INSTALL:-1}
PY=${AEMT_SLURM_PYTHON:-$REPO/.venv/bin/python}
PLUGIN=${AEMT_SLURM_PLUGIN-snakemake-executor-plugin-slurm==2.8.0}
CONF_DIR=/etc/slurm
MARK="# written by aemt .ci/slurm/setup.sh"
T0=$(date +%s.%N)

log() { printf '[slurm-setup] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_idle() { sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, /etc/slurm and the daemons need it)"

# --- 1. packages -------------------------------------------------------------------------------
have_pkgs() {
  local p
  for p in munge slurm-wlm slurmctld slurmd slurm-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}
if ! have_pkgs; then
  [ "$INSTALL" = 1 ] || die "munge/slurm-wlm not installed and AEMT_SLURM_INSTALL=0"
  log "installing munge + slurm-wlm with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends munge slurm-wlm >/dev/null
else
  log "munge + slurm-wlm already installed"
fi

# --- 2. executor plugin in the project venv -------------------------------------------------------
if [ -n "$PLUGIN" ]; then
  [ -x "$PY" ] || PY=$(command -v python3)
  if ! "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('snakemake_executor_plugin_slurm') is None)"; then
    log "pip install $PLUGIN into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q "$PLUGIN"
  fi
fi

# --- 3. already running? -------------------------------------------------------------------------
RUN=$BOX/var/run
if alive "$RUN/slurmctld.pid" && alive "$RUN/slurmd.pid" && node_idle; then
  log "cluster already up (slurmctld $(cat "$RUN/slurmctld.pid"), slurmd $(cat "$RUN/slurmd.pid"))"
  sinfo -o '%P %a %D %T %c %m %G'
  exit 0
fi
for d in slurmd slurmctld; do  # half-started leftovers of an earlier call: stop them by PID
  if alive "$RUN/$d.pid"; then kill "$(cat "$RUN/$d.pid")"; sleep 1; fi
done

# --- 4. configuration ------------------------------------------------------------------------------
if [ -e "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
  die "$CONF_DIR/slurm.conf exists and was not written by this script; refusing to overwrite it"
fi
# Fresh state each start: a stale state dir can keep the node INVAL/DRAIN from an earlier config.
rm -rf "$BOX/var/state" "$BOX/var/spool"
mkdir -p "$BOX"/var/{state,spool,log,run} "$CONF_DIR"

NCPU=$(nproc)
HW_MEM=$(slurmd -C 2>/dev/null | grep -o 'RealMemory=[0-9]*' | cut -d= -f2 || true)
[ -n "$HW_MEM" ] || HW_MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))
MEM=$(( HW_MEM * 9 / 10 ))  # leave 10 % to the OS; RealMemory above what slurmd sees drains the node

GRES_TYPES=""; NODE_GRES=""
if [ "$FAKE_GPU" = 1 ]; then
  GRES_TYPES="GresTypes=gpu"; NODE_GRES="Gres=gpu:1"
  printf '%s\nNodeName=localhost Name=gpu File=/dev/null\n' "$MARK" > "$CONF_DIR/gres.conf"
else
  rm -f "$CONF_DIR/gres.conf"
fi

# slurm.conf must live at /etc/slurm/slurm.conf: inside a job the jobstep plugin strips every
# SLURM_* variable (SLURM_CONF too) before its srun, so only the compiled-in default path works.
cat > "$CONF_DIR/slurm.conf" <<CONF
$MARK ($(date -u +%FT%TZ)); state under $BOX
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
# no systemd / cgroups in CI sandboxes: track processes by PID, no CPU binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BOX/var/state
SlurmdSpoolDir=$BOX/var/spool
SlurmctldLogFile=$BOX/var/log/slurmctld.log
SlurmdLogFile=$BOX/var/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
# finished jobs stay visible to squeue/scontrol for an hour: the plugin's squeue status path
# needs MinJobAge >= 3 x its init seconds, and the tests read 'scontrol show job' afterwards
MinJobAge=3600
InactiveLimit=0
KillWait=5
Waittime=0
JobCompType=jobcomp/none
# no slurmdbd: sacct does not work, so Snakemake must use '--slurm-status-command squeue'
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
$GRES_TYPES
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$NCPU Boards=1 SocketsPerBoard=1 CoresPerSocket=$NCPU ThreadsPerCore=1 RealMemory=$MEM $NODE_GRES State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
log "wrote $CONF_DIR/slurm.conf: 1 node, CPUs=$NCPU RealMemory=${MEM}M fake_gpu=$FAKE_GPU"

# --- 5. daemons ------------------------------------------------------------------------------------
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
if alive /run/munge/munged.pid; then
  log "munged already running ($(cat /run/munge/munged.pid)); not ours to stop"
  rm -f "$RUN/munged.pid"
else
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  cp /run/munge/munged.pid "$RUN/munged.pid"  # teardown stops munged only if we started it
fi
munge -n | unmunge >/dev/null || die "munge does not work"

export SLURM_CONF=$CONF_DIR/slurm.conf
/usr/sbin/slurmctld
/usr/sbin/slurmd -N localhost  # -N: the NodeName is not this host's name
for _ in $(seq 1 120); do node_idle && break; sleep 0.5; done
if ! node_idle; then
  sinfo -o '%N %T %E' >&2 || true
  tail -n 20 "$BOX"/var/log/slurm*.log >&2 || true
  die "node did not become idle within 60 s"
fi
log "up in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s:" \
  "munged $(cat /run/munge/munged.pid) slurmctld $(cat "$RUN/slurmctld.pid") slurmd $(cat "$RUN/slurmd.pid")"
sinfo -o '%P %a %D %T %c %m %G'
