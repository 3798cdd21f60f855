#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for 'make test-slurm': 'start' installs slurm-wlm and munge with apt when
# they are missing (as root), writes slurm.conf naming this host as controller and only node, starts munged,
# slurmctld and slurmd and waits until the node is idle; 'stop' ends the daemons it started, by their process ids.
# STATE (default /tmp/inpars-slurm) keeps the pid files, the spool and state folders and the logs.
set -euo pipefail

STATE="${INPARS_SLURM_STATE:-/tmp/inpars-slurm}"
CONF=/etc/slurm/slurm.conf

install() {
    if command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "cluster.sh: slurm-wlm and munge are missing; install them (apt-get install slurm-wlm munge) as root" >&2
        exit 2
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
}

start() {
    install
    local host cpus
    host="$(hostname -s)"
    cpus="$(nproc)"
    mkdir -p "$STATE/spool/d" "$STATE/spool/ctld" "$STATE/log" /etc/slurm /run/munge /var/log/munge /var/lib/munge /etc/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chmod 400 /etc/munge/munge.key
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    if [ -f "$CONF" ] && [ ! -f "$STATE/conf.backup" ] && ! grep -q "written by inpars" "$CONF"; then
        cp "$CONF" "$STATE/conf.backup"
    fi
    cat > "$CONF" <<CONF
# written by inpars tests/slurm/cluster.sh: a one-node cluster on $host
ClusterName=inpars
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=600
JobRequeue=1
NodeName=$host CPUs=$cpus RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    if ! pgrep -u munge -x munged >/dev/null 2>&1; then
        # munged forks into the background and writes its pid file: that pid is the one to stop.
        rm -f /run/munge/munged.pid
        su -s /bin/sh munge -c /usr/sbin/munged
        for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
        cp /run/munge/munged.pid "$STATE/munged.started"
    fi
    slurmctld
    slurmd
    for _ in $(seq 60); do
        if sinfo --noheader --format=%t 2>/dev/null | grep -qx idle; then
            echo "cluster.sh: node $host idle ($cpus CPUs); stop with '$0 stop'"
            return
        fi
        sleep 1
    done
    echo "cluster.sh: the node did not come up idle within 60 s; see $STATE/log/" >&2
    sinfo >&2 || true
    exit 1
}

stop_pid() {  # $1: a file holding the pid of a daemon this script started
    [ -s "$1" ] || return 0
    local pid
    pid="$(head -n1 "$1")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$1"
}

stop() {
    stop_pid "$STATE/slurmd.pid"
    stop_pid "$STATE/slurmctld.pid"
    stop_pid "$STATE/munged.started"
    if [ -f "$STATE/conf.backup" ]; then
        mv "$STATE/conf.backup" "$CONF"
    fi
    echo "cluster.sh: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
