#!/bin/bash
# Written for saferun's tests after the official mariadb image's docker-entrypoint.sh:
#   - options first mean "mariadbd ...", help/version options run directly;
#   - as root: create the datadir, give it and the socket folder to mysql, re-run as mysql
#     with gosu;
#   - on the first start (no datadir/mysql): demand one of MARIADB_ROOT_PASSWORD(_FILE),
#     MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD (MYSQL_* accepted too),
#     run mariadb-install-db, start a temporary server without networking, set the root
#     password (root@localhost and root@MARIADB_ROOT_HOST, default '%'), create
#     MARIADB_DATABASE and MARIADB_USER/MARIADB_PASSWORD with rights on it, run
#     /docker-entrypoint-initdb.d/*, stop the temporary server;
#   - then exec the server.
set -eo pipefail

note() { printf '%s [Note] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*"; }
warn() { printf '%s [Warn] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; }
fail() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; exit 1; }

# MARIADB_X from $MARIADB_X, $MARIADB_X_FILE, $MYSQL_X or $MYSQL_X_FILE, in that order.
file_env() {
    local var=$1 default=${2:-} value
    local mysql_var=${var/#MARIADB_/MYSQL_}
    local candidate
    value=$default
    for candidate in "$var" "$mysql_var"; do
        if [ -n "${!candidate:-}" ]; then value=${!candidate}; break; fi
        local file_var="${candidate}_FILE"
        if [ -n "${!file_var:-}" ]; then value=$(<"${!file_var}"); break; fi
    done
    export "$var"="$value"
    unset "${var}_FILE" "${mysql_var}_FILE"
}

sql_string() {  # a SQL string literal's contents
    local s=${1//\\/\\\\}
    printf '%s' "${s//\'/\\\'}"
}

config_value() {  # what the server would use for option $1, given the command line
    local option=$1; shift
    "$@" --verbose --help 2>/dev/null | awk -v o="$option" '/^[^ \t]/ && $1 == o { print $2; exit }'
}

client() {
    mariadb --protocol=socket --socket="$SOCKET" -uroot -hlocalhost "$@"
}

wants_help=
for arg; do
    case "$arg" in
        -'?'|--help|--print-defaults|-V|--version) wants_help=1; break ;;
    esac
done

if [ "${1:0:1}" = '-' ]; then
    set -- mariadbd "$@"
fi

if { [ "$1" = mariadbd ] || [ "$1" = mysqld ]; } && [ -z "$wants_help" ]; then
    note "Entrypoint script for MariaDB Server started."
    DATADIR=$(config_value datadir "$@")
    SOCKET=$(config_value socket "$@")
    mkdir -p "$DATADIR"
    if [ "$(id -u)" = 0 ]; then
        find "$DATADIR" \! -user mysql -exec chown mysql: '{}' +
        find "${SOCKET%/*}" -maxdepth 0 \! -user mysql -exec chown mysql: '{}' \;
        note "Switching to dedicated user 'mysql'"
        exec gosu mysql "${BASH_SOURCE[0]}" "$@"
    fi

    if [ ! -d "$DATADIR/mysql" ]; then
        file_env MARIADB_ROOT_PASSWORD
        file_env MARIADB_ALLOW_EMPTY_ROOT_PASSWORD
        file_env MARIADB_RANDOM_ROOT_PASSWORD
        file_env MARIADB_ROOT_HOST '%'
        file_env MARIADB_DATABASE
        file_env MARIADB_USER
        file_env MARIADB_PASSWORD
        if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] \
            && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
            fail $'Database is uninitialized and password option is not specified\n\tYou need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD'
        fi
        note "Initializing database files"
        mariadb-install-db "${@:2}" --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
            --skip-test-db --default-time-zone=SYSTEM --enforce-storage-engine= --skip-log-bin \
            --expire-logs-days=0 --loose-innodb_buffer_pool_load_at_startup=0 \
            --loose-innodb_buffer_pool_dump_at_shutdown=0
        note "Database files initialized"

        note "Starting temporary server"
        "$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep_on=OFF \
            --expire-logs-days=0 --loose-innodb_buffer_pool_load_at_startup=0 &
        server_pid=$!
        for _ in $(seq 120); do
            client --database=mysql -e 'SELECT 1' >/dev/null 2>&1 && break
            kill -0 "$server_pid" 2>/dev/null || fail "Unable to start server."
            sleep 0.5
        done
        client --database=mysql -e 'SELECT 1' >/dev/null || fail "Unable to start server."
        note "Temporary server started."

        if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
            MARIADB_ROOT_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
            note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
        fi
        root_pw=$(sql_string "$MARIADB_ROOT_PASSWORD")
        root_host=$(sql_string "$MARIADB_ROOT_HOST")
        sql="SET @@SESSION.SQL_LOG_BIN=0;
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\\'', @@hostname,'\\'');
SET PASSWORD FOR 'root'@'localhost'=PASSWORD('$root_pw');"
        if [ "$MARIADB_ROOT_HOST" != localhost ]; then
            sql+="
CREATE USER 'root'@'$root_host' IDENTIFIED BY '$root_pw';
GRANT ALL ON *.* TO 'root'@'$root_host' WITH GRANT OPTION;
GRANT PROXY ON ''@'%' TO 'root'@'$root_host' WITH GRANT OPTION;"
        fi
        if [ -n "$MARIADB_DATABASE" ]; then
            note "Creating database ${MARIADB_DATABASE}"
            sql+="
CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
        fi
        if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
            note "Creating user ${MARIADB_USER}"
            user=$(sql_string "$MARIADB_USER")
            sql+="
CREATE USER '$user'@'%' IDENTIFIED BY '$(sql_string "$MARIADB_PASSWORD")';"
            if [ -n "$MARIADB_DATABASE" ]; then
                note "Giving user ${MARIADB_USER} access to schema ${MARIADB_DATABASE}"
                sql+="
GRANT ALL ON \`${MARIADB_DATABASE//\`/\`\`}\`.* TO '$user'@'%';"
            fi
        fi
        note "Securing system users (equivalent to running mysql_secure_installation)"
        client --database=mysql --binary-mode <<<"$sql"

        export MYSQL_PWD=$MARIADB_ROOT_PASSWORD
        for f in /docker-entrypoint-initdb.d/*; do
            case "$f" in
                *.sh) note "$0: running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
                *.sql) note "$0: running $f"; client ${MARIADB_DATABASE:+--database="$MARIADB_DATABASE"} <"$f" ;;
                *.sql.gz) note "$0: running $f"; gunzip -c "$f" | client ${MARIADB_DATABASE:+--database="$MARIADB_DATABASE"} ;;
                */\*) ;;
                *) warn "$0: ignoring $f" ;;
            esac
        done
        unset MYSQL_PWD

        note "Stopping temporary server"
        kill "$server_pid"
        wait "$server_pid" || true
        note "Temporary server stopped"
        echo
        note "MariaDB init process done. Ready for start up."
        echo
    fi
fi

exec "$@"
