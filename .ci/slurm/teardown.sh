#!/usr/bin/env bash
# .ci/slurm/teardown.sh: stop the single-node CI cluster started by setup.sh, each daemon by the
# PID it recorded (slurmd, then slurmctld, then munged if setup.sh started it). Never kills by
# name. Leaves packages, /etc/slurm and the logs under $AEMT_SLURM_DIR in place (logs are useful
# after a failed CI run); AEMT_SLURM_PURGE_STATE=1 also removes $AEMT_SLURM_DIR.
set -uo pipefail

BOX=${AEMT_SLURM_DIR:-/tmp/aemt-slurm}
RUN=$BOX/var/run

stop() {  # stop NAME PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL
  local name=$1 file=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    echo "[slurm-teardown] stopped $name ($pid)" >&2
  fi
  rm -f "$file"
}

stop slurmd "$RUN/slurmd.pid"
stop slurmctld "$RUN/slurmctld.pid"
stop munged "$RUN/munged.pid"  # present only when setup.sh started munged itself
if [ "${AEMT_SLURM_PURGE_STATE:-0}" = 1 ]; then rm -rf "$BOX"; fi
exit 0
