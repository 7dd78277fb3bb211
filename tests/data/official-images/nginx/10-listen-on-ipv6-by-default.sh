#!/bin/sh
# Like the official script of that name: when the kernel has IPv6, add "listen [::]:80;" to
# the image's own default.conf. Steps aside (exit 0) when the file is missing, cannot be
# written (a read-only root), or is no longer the packaged one.
set -eu
ME=$(basename "$0")
conf=/etc/nginx/conf.d/default.conf

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

if [ ! -f /proc/net/if_inet6 ]; then
    entrypoint_log "$ME: info: ipv6 not available"
    exit 0
fi
if [ ! -f "$conf" ]; then
    entrypoint_log "$ME: info: $conf is not a file or does not exist"
    exit 0
fi
if ! touch "$conf" 2>/dev/null; then
    entrypoint_log "$ME: info: can not modify $conf (read-only file system?)"
    exit 0
fi
entrypoint_log "$ME: info: Getting the checksum of $conf"
if ! sha256sum -c /usr/share/nginx/default.conf.sha256 >/dev/null 2>&1; then
    entrypoint_log "$ME: info: $conf differs from the packaged version"
    exit 0
fi
sed -i -E 's,^( *)listen( +)80;,&\n\1listen  [::]:80;,' "$conf"
entrypoint_log "$ME: info: Enabled listen on IPv6 in $conf"
exit 0
