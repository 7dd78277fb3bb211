#!/bin/sh
# Written for saferun's tests after the official haproxy entrypoint: options first mean
# "haproxy ...", and haproxy runs in master-worker mode (-W) in the foreground (-db) so that
# the container's signals reach it and it logs to the terminal.
set -e
case "${1:-}" in
    -*) set -- haproxy "$@" ;;
esac
if [ "$1" = 'haproxy' ]; then
    shift
    set -- haproxy -W -db "$@"
fi
exec "$@"
