#!/bin/sh
# Written for saferun's tests after the official memcached entrypoint: options first mean
# "memcached ...". The image already runs as the memcache user, so nothing else to do.
set -e
case "${1:-}" in
    -*) set -- memcached "$@" ;;
esac
exec "$@"
