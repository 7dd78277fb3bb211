#!/bin/sh
# Like the official script: with NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE set, replace
# "worker_processes auto" by the number of CPUs the container may really use (its cgroup CPU
# quota, else the CPUs it may run on). Skips when nginx.conf cannot be written.
set -eu
ME=$(basename "$0")
conf=/etc/nginx/nginx.conf

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

[ -n "${NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE:-}" ] || exit 0
if ! touch "$conf" 2>/dev/null; then
    entrypoint_log "$ME: info: can not modify $conf (read-only file system?)"
    exit 0
fi

ncpu=$(nproc)
quota=
if [ -r /sys/fs/cgroup/cpu.max ]; then
    read -r q p </sys/fs/cgroup/cpu.max
    [ "$q" = max ] || quota=$(( (q + p - 1) / p ))
elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    q=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
    p=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
    [ "$q" -le 0 ] || quota=$(( (q + p - 1) / p ))
fi
if [ -n "$quota" ] && [ "$quota" -lt "$ncpu" ]; then
    ncpu=$quota
fi
sed -i.bak -E "s/^ *worker_processes +auto;/worker_processes  $ncpu;/" "$conf"
entrypoint_log "$ME: info: worker_processes set to $ncpu"
exit 0
