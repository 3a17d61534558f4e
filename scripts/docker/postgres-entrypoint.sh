#!/usr/bin/env bash
# Entrypoint of keyroute's local postgres image (see build-image.sh). It keeps
# the official image's contract so that clients, testcontainers included, need
# no special case:
#   - POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default
#     the user), POSTGRES_HOST_AUTH_METHOD (default scram-sha-256; trust allows
#     no password), POSTGRES_INITDB_ARGS;
#   - on first start: initdb into $PGDATA, then a temporary server on the unix
#     socket only, started by `pg_ctl -w`, which prints its log (and so
#     "database system is ready to accept connections") on STDOUT; the database
#     and /docker-entrypoint-initdb.d/*.sql|*.sh are applied through it, and it
#     is stopped;
#   - then the real server replaces this script: listening on all addresses,
#     port 5432, as the postgres user, logging to STDERR (where the same ready
#     line appears again);
#   - arguments: `IMAGE -c fsync=off` runs `postgres -c fsync=off`; any other
#     command runs as is.
set -Eeuo pipefail

log() {
    printf '%s\n' "$*"
}

# Creates the superuser (initdb), opens host connections with the chosen
# authentication, and applies the database and init scripts through a
# temporary socket-only server.
initialise() {
    local auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    local initdb_args=() file
    if [[ -z ${POSTGRES_PASSWORD:-} && $auth != trust ]]; then
        log "error: database is uninitialized and superuser password is not specified;" \
            "set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust" >&2
        exit 1
    fi

    read -ra initdb_args <<<"${POSTGRES_INITDB_ARGS:-}"
    if [[ -n ${POSTGRES_PASSWORD:-} ]]; then
        initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${initdb_args[@]}"
    else
        initdb --username="$POSTGRES_USER" "${initdb_args[@]}"
    fi
    printf '\nlisten_addresses = '\''*'\''\n' >>"$PGDATA/postgresql.conf"
    printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

    # Same options as the real server, but no TCP listener: nothing outside
    # can connect, or see the server as ready, before setup is done.
    local temp_options=("${@:2}" -c "listen_addresses=" -p 5432)
    pg_ctl -D "$PGDATA" -o "$(printf '%q ' "${temp_options[@]}")" -w start

    local psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [[ $POSTGRES_DB != postgres ]]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    shopt -s nullglob
    for file in /docker-entrypoint-initdb.d/*; do
        case $file in
            *.sql) log "running $file"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$file" ;;
            *.sh) log "running $file"; bash "$file" ;;
            *) log "ignoring $file" ;;
        esac
    done

    pg_ctl -D "$PGDATA" -m fast -w stop
    log "PostgreSQL init process complete; ready for start up."
}

main() {
    if [[ ${1:-} == -* ]]; then
        set -- postgres "$@"
    fi
    if [[ ${1:-} != postgres ]]; then
        exec "$@"
    fi

    export POSTGRES_USER=${POSTGRES_USER:-postgres}
    export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

    if ((EUID == 0)); then
        # Root only prepares the directories, then runs this script again as
        # postgres (setpriv execs, like the official image's gosu).
        mkdir -p "$PGDATA" /var/run/postgresql
        chown -R postgres:postgres "$PGDATA" /var/run/postgresql
        chmod 700 "$PGDATA"
        chmod 3777 /var/run/postgresql
        export HOME=/var/lib/postgresql
        exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [[ ! -s $PGDATA/PG_VERSION ]]; then
        initialise "$@"
    fi
    exec "$@"
}

main "$@"
