#!/usr/bin/env bash
# Written for saferun's tests after the official postgres image's docker-entrypoint.sh:
#   - options first mean "postgres ...";
#   - as root: create PGDATA and the socket folder, give them to postgres, re-run as postgres
#     with gosu;
#   - on the first start (no PG_VERSION): demand POSTGRES_PASSWORD (or _FILE, or
#     POSTGRES_HOST_AUTH_METHOD=trust), initdb with POSTGRES_USER and the password, allow
#     password logins from any host, start a temporary server on the socket only, create
#     POSTGRES_DB, run /docker-entrypoint-initdb.d/*, stop it;
#   - then exec the server.
set -Eeo pipefail

log() { printf '%s\n' "$*"; }

# VAR from $VAR or the file named by $VAR_FILE (a secret), never both.
file_env() {
    local var=$1 file_var="${1}_FILE" default=${2:-} value
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        log "error: both $var and $file_var are set (but are exclusive)" >&2
        exit 1
    fi
    value=$default
    if [ -n "${!var:-}" ]; then
        value=${!var}
    elif [ -n "${!file_var:-}" ]; then
        value=$(<"${!file_var}")
    fi
    export "$var"="$value"
    unset "$file_var"
}

create_directories() {
    local root=
    [ "$(id -u)" = 0 ] && root=1
    mkdir -p "$PGDATA"
    # Fails without ownership of PGDATA (e.g. --user without a chown): ignored, like upstream.
    chmod 00700 "$PGDATA" || :
    mkdir -p /var/run/postgresql || :
    chmod 03775 /var/run/postgresql || :
    if [ -n "$root" ]; then
        find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
        find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
    fi
}

psql_run() {
    PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}" psql -v ON_ERROR_STOP=1 \
        --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

init_database() {
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    local method=${POSTGRES_HOST_AUTH_METHOD:-}
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$method" != trust ]; then
        cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
MSG
        exit 1
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words on purpose
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        $POSTGRES_INITDB_ARGS
    printf '\nhost all all all %s\n' "${method:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"

    # A temporary server that listens only on its socket.
    local args=("${@:2}" -c listen_addresses='' -p "${PGPORT:-5432}")
    PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "${args[@]}")" -w start
    if [ "$POSTGRES_DB" != postgres ]; then
        psql_run --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
    fi
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then log "$0: running $f"; "$f"; else log "$0: sourcing $f"; . "$f"; fi ;;
            *.sql) log "$0: running $f"; psql_run --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) log "$0: running $f"; gunzip -c "$f" | psql_run --dbname "$POSTGRES_DB" ;;
            */\*) ;;
            *) log "$0: ignoring $f" ;;
        esac
    done
    PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -m fast -w stop
    log
    log 'PostgreSQL init process complete; ready for start up.'
    log
}

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
    create_directories
    if [ "$(id -u)" = 0 ]; then
        exec gosu postgres "${BASH_SOURCE[0]}" "$@"
    fi
    if [ -s "$PGDATA/PG_VERSION" ]; then
        log
        log 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
        log
    else
        init_database "$@"
    fi
    unset PGPASSWORD
fi

exec "$@"
