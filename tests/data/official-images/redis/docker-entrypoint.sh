#!/bin/sh
# Written for saferun's tests after the behaviour of the official redis image's entrypoint:
# options or a *.conf first mean "redis-server ...", root fixes ownership of /data and drops
# to the redis user with gosu, protected mode is turned off unless a config file sets it,
# and the default umask 0022 becomes 0077.
set -e

case "${1:-}" in
    -*|*.conf) set -- redis-server "$@" ;;
esac

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    # the working directory is /data: hand everything in it to redis
    find . \! -user redis -exec chown redis '{}' +
    exec gosu redis "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
    config=
    turn_off=1
    if [ -n "${2:-}" ] && [ -f "$2" ]; then
        config=$2
        if grep -qE '^[[:space:]]*protected-mode[[:space:]]' "$config"; then
            turn_off=
        fi
    fi
    if [ -n "$turn_off" ]; then
        shift
        if [ -n "$config" ]; then
            shift
            set -- redis-server "$config" --protected-mode no "$@"
        else
            set -- redis-server --protected-mode no "$@"
        fi
    fi
fi

if [ "$(umask)" = '0022' ]; then
    umask 0077
fi

exec "$@"
