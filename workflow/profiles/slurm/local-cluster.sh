#!/usr/bin/env bash
# Install and start a single-node SLURM cluster (with accounting) on this Debian machine, as root,
# idempotently: a second call finds everything running and changes nothing. For tests and demos:
#   sudo workflow/profiles/slurm/local-cluster.sh && sinfo
# Daemons are started directly (no systemd); the node's layout comes from `slurmd -C`.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "local-cluster.sh must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

# Exit status 3: the packages could not be installed (no apt, or its mirrors are unreachable).
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        echo "local-cluster.sh installs Debian's slurm-wlm packages and needs apt-get" >&2
        exit 3
    fi
    if ! apt-get update -qq || ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        slurm-wlm slurmdbd munge mariadb-server >/dev/null; then
        echo "apt-get could not install slurm-wlm, slurmdbd, munge and mariadb-server" >&2
        exit 3
    fi
fi

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "timed out waiting for $what" >&2
    return 1
}

# munge: authentication between the daemons and the clients.
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge /var/log/munge /var/lib/munge
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
fi
wait_for 20 munge munge -n

# MariaDB: the accounting database (sacct needs slurmdbd, slurmdbd needs a database).
install -d -o mysql -g mysql /run/mysqld
if ! pgrep -x mariadbd >/dev/null; then
    (mysqld_safe >/dev/null 2>&1 &)
fi
wait_for 60 mariadb mysqladmin ping
mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
          CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
          GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
CONF
chmod 600 /etc/slurm/slurmdbd.conf
if ! pgrep -x slurmdbd >/dev/null; then
    slurmdbd
fi
wait_for 30 slurmdbd bash -c "ss -ltn | grep -q ':6819 '"

node=$(slurmd -C | head -n 1 | sed 's/ UpTime=.*//')
node_name=$(echo "$node" | sed 's/^NodeName=\([^ ]*\).*/\1/')
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=imprint
SlurmctldHost=${node_name}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
${node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

sacctmgr -i add cluster imprint >/dev/null 2>&1 || true
sacctmgr -i add account imprint Cluster=imprint Description=imprint >/dev/null 2>&1 || true
sacctmgr -i add user root Account=imprint >/dev/null 2>&1 || true

if ! pgrep -x slurmctld >/dev/null; then
    slurmctld
fi
if ! pgrep -x slurmd >/dev/null; then
    slurmd
fi
wait_for 60 "the node to be idle" bash -c "sinfo -h -o '%t' | grep -qE '^(idle|mix|alloc)'"
sinfo
