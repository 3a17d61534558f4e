#!/usr/bin/env bash
# Entrypoint of keyroute's local mariadb image (see build-image.sh). It keeps
# the official image's contract so that clients, testcontainers included, need
# no special case:
#   - MARIADB_ROOT_PASSWORD or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD (one is
#     required), MARIADB_ROOT_HOST (default %), MARIADB_DATABASE, MARIADB_USER
#     and MARIADB_PASSWORD, each also under its MYSQL_* name;
#   - on first start: mariadb-install-db, then a temporary server with
#     --skip-networking (its ready line says "port: 0"), through which root,
#     the database, the user and /docker-entrypoint-initdb.d/*.sql|*.sh are
#     set up; it is then shut down;
#   - then the real server replaces this script: listening on 0.0.0.0:3306,
#     as the mysql user, logging to STDERR ("mariadbd: ready for connections."
#     followed by "port: 3306");
#   - arguments: `IMAGE --some-option` runs `mariadbd --some-option`; any
#     other command runs as is.
set -Eeuo pipefail

readonly DATADIR=/var/lib/mysql SOCKET=/run/mysqld/mysqld.sock

log() {
    printf '%s\n' "$*"
}

die() {
    log "error: $*" >&2
    exit 1
}

# Quotes a value as an SQL string literal.
sql_string() {
    local value=${1//\\/\\\\}
    printf "'%s'" "${value//\'/\\\'}"
}

# Quotes a value as an SQL identifier.
sql_identifier() {
    # shellcheck disable=SC2016 # the backquotes are SQL, not a command
    printf '`%s`' "${1//\`/\`\`}"
}

# Runs SQL from stdin as root over the socket; $ROOT_PASSWORD is empty until
# the setup has set it.
root_sql() {
    MYSQL_PWD=${ROOT_PASSWORD:-} mariadb --protocol=socket --socket="$SOCKET" -uroot "$@"
}

# Creates the system tables, then sets up accounts and the database through a
# temporary server that no client outside can reach.
initialise() {
    local root_password=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
    local allow_empty=${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}
    local root_host=${MARIADB_ROOT_HOST:-${MYSQL_ROOT_HOST:-%}}
    local database=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
    local user=${MARIADB_USER:-${MYSQL_USER:-}}
    local password=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}
    local server_pid file deadline

    if [[ -z $root_password && -z $allow_empty ]]; then
        die "database is uninitialized and password option is not specified;" \
            "set MARIADB_ROOT_PASSWORD or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD"
    fi
    if [[ $user == root ]]; then
        die "MARIADB_USER is for a regular user and cannot be root"
    fi

    log "initializing database files"
    # normal: root@localhost authenticates by password, not by unix socket user.
    mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
        --skip-test-db --skip-log-bin "${@:2}" >/dev/null

    "$@" --skip-networking --socket="$SOCKET" --skip-log-bin &
    server_pid=$!
    deadline=$((SECONDS + 30))
    until root_sql -e 'SELECT 1' >/dev/null 2>&1; do
        kill -0 "$server_pid" 2>/dev/null || die "the temporary server exited"
        ((SECONDS < deadline)) || die "the temporary server did not start in 30 s"
        sleep 0.2
    done

    local pw host setup
    pw=$(sql_string "$root_password")
    host=$(sql_string "$root_host")
    setup="DROP USER IF EXISTS root@'127.0.0.1', root@'::1', root@'$HOSTNAME';"
    setup+="SET PASSWORD FOR root@localhost = PASSWORD($pw);"
    if [[ $root_host != localhost ]]; then
        setup+="CREATE USER root@$host IDENTIFIED BY $pw;"
        setup+="GRANT ALL ON *.* TO root@$host WITH GRANT OPTION;"
        setup+="GRANT PROXY ON ''@'%' TO root@$host WITH GRANT OPTION;"
    fi
    if [[ -n $database ]]; then
        setup+="CREATE DATABASE IF NOT EXISTS $(sql_identifier "$database");"
    fi
    if [[ -n $user ]]; then
        setup+="CREATE USER $(sql_string "$user")@'%' IDENTIFIED BY $(sql_string "$password");"
        if [[ -n $database ]]; then
            setup+="GRANT ALL ON $(sql_identifier "$database").* TO $(sql_string "$user")@'%';"
        fi
    fi
    root_sql <<<"$setup"
    ROOT_PASSWORD=$root_password

    local default_db=()
    if [[ -n $database ]]; then
        default_db=(--database="$database")
    fi
    shopt -s nullglob
    for file in /docker-entrypoint-initdb.d/*; do
        case $file in
            *.sql) log "running $file"; root_sql "${default_db[@]}" <"$file" ;;
            *.sh) log "running $file"; bash "$file" ;;
            *) log "ignoring $file" ;;
        esac
    done

    kill -TERM "$server_pid"
    wait "$server_pid"
    log "MariaDB init process done. Ready for start up."
}

main() {
    if [[ ${1:-} == -* ]]; then
        set -- mariadbd "$@"
    fi
    if [[ ${1:-} != mariadbd && ${1:-} != mysqld ]]; then
        exec "$@"
    fi

    if ((EUID == 0)); then
        # Root only prepares the directories, then runs this script again as
        # mysql (setpriv execs, like the official image's gosu).
        mkdir -p "$DATADIR" "${SOCKET%/*}"
        chown -R mysql:mysql "$DATADIR" "${SOCKET%/*}"
        exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [[ ! -d $DATADIR/mysql ]]; then
        initialise "$@"
    fi
    exec "$@"
}

main "$@"
