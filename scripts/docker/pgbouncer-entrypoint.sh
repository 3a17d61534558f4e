#!/usr/bin/env bash
# Entrypoint of keyroute's local pgbouncer image (see build-image.sh), the stand-in
# for the community image edoburu/pgbouncer:1.18.0 (there is no official PgBouncer
# image; that one is the widely used one). Debian bookworm ships PgBouncer 1.18. It
# keeps that image's contract, so a client that sets the variables explicitly needs
# no special case for either image:
#   - on first start it writes /etc/pgbouncer/pgbouncer.ini from the environment
#     (an existing file is kept, so a mounted configuration wins, and a restarted
#     container keeps the one it wrote) and prints it; it adds DB_USER to
#     /etc/pgbouncer/userlist.txt unless that user is listed already;
#   - DB_HOST (required), DB_PORT (default 5432), DB_USER, DB_PASSWORD, DB_NAME
#     (default `*`: every database on the server, each pooled on its own);
#   - POOL_MODE, AUTH_TYPE, LISTEN_ADDR (default 0.0.0.0), LISTEN_PORT,
#     UNIX_SOCKET_DIR (default none), ADMIN_USERS, STATS_USERS,
#     IGNORE_STARTUP_PARAMETERS, SERVER_RESET_QUERY, and every setting listed in
#     OPTIONAL_SETTINGS below, from the variable of the same name in upper case
#     (MAX_CLIENT_CONN, DEFAULT_POOL_SIZE, ...), written only when set;
#   - it runs PgBouncer in the foreground as the postgres user, logging to STDERR
#     "listening on 0.0.0.0:PORT" and then "process up: PgBouncer 1.18.0, ..." once
#     it accepts connections (it connects to PostgreSQL only when a client needs a
#     server connection, so neither line says the server answers);
#   - arguments: `IMAGE -v` runs `pgbouncer -v /etc/pgbouncer/pgbouncer.ini`; the
#     command `pgbouncer` or `/usr/bin/pgbouncer` gets the set-up; any other command
#     runs as is.
# Where it differs from edoburu's image, on purpose (keyroute's tests put it in front
# of the local postgres image, whose host connections use scram-sha-256):
#   - defaults: POOL_MODE transaction (PgBouncer's own default is session), AUTH_TYPE
#     scram-sha-256 (edoburu: md5), LISTEN_PORT 6432 (PgBouncer's own; edoburu: 5432),
#     ADMIN_USERS and STATS_USERS DB_USER (edoburu: postgres), and
#     IGNORE_STARTUP_PARAMETERS extra_float_digits,options (edoburu: the first only);
#   - the password goes into userlist.txt as given, whatever AUTH_TYPE: PgBouncer
#     needs it in clear to answer PostgreSQL's SCRAM challenge (edoburu writes an md5
#     hash for AUTH_TYPE=md5, which cannot), and accepts it for md5, plain and
#     scram-sha-256 clients alike;
#   - in transaction and statement mode server_reset_query is written empty, as
#     PgBouncer's documentation advises (it does not run it in those modes anyway,
#     so SHOW CONFIG then says what happens);
#   - DATABASE_URL is refused rather than parsed: set the DB_* variables instead.
set -Eeuo pipefail

readonly CONFIG_DIR=/etc/pgbouncer
readonly CONFIG=$CONFIG_DIR/pgbouncer.ini
readonly USERLIST=$CONFIG_DIR/userlist.txt

# PgBouncer settings taken from the variable of the same name in upper case, when it
# is set and not empty; PgBouncer's defaults hold for the others.
readonly OPTIONAL_SETTINGS=(
    max_client_conn default_pool_size min_pool_size reserve_pool_size
    reserve_pool_timeout max_db_connections max_user_connections server_round_robin
    server_reset_query_always server_check_delay server_check_query server_lifetime
    server_idle_timeout server_connect_timeout server_login_retry client_login_timeout
    autodb_idle_timeout query_timeout query_wait_timeout client_idle_timeout
    idle_transaction_timeout application_name_add_host log_connections
    log_disconnections log_pooler_errors log_stats stats_period verbose
)

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Prints one entry of userlist.txt: both fields in double quotes, a double quote
# inside doubled (PgBouncer's escape).
#   $1: user; $2: password
userlist_entry() {
    printf '"%s" "%s"\n' "${1//\"/\"\"}" "${2//\"/\"\"}"
}

# Adds DB_USER with DB_PASSWORD to the userlist unless the user is listed already
# (a restarted container, or a mounted file that names it). The file holds a
# password in clear: only the postgres user may read it.
write_userlist() {
    local quoted
    if [[ ! -e $USERLIST ]]; then
        (umask 0077 && : >"$USERLIST")
    fi
    [[ -n ${DB_USER:-} && -n ${DB_PASSWORD:-} ]] || return 0
    quoted="\"${DB_USER//\"/\"\"}\""
    if grep -qF -- "$quoted " "$USERLIST"; then
        return 0
    fi
    userlist_entry "$DB_USER" "$DB_PASSWORD" >>"$USERLIST"
    printf 'Wrote the credentials of %s to %s\n' "$DB_USER" "$USERLIST"
}

# Prints pgbouncer.ini for the environment.
config() {
    local mode=${POOL_MODE:-transaction} user=${DB_USER:-postgres} name var
    printf '; Written by keyroute'\''s pgbouncer image from its environment.\n'
    printf '[databases]\n'
    printf '%s = host=%s port=%s\n' "${DB_NAME:-*}" "$DB_HOST" "${DB_PORT:-5432}"
    printf '\n[pgbouncer]\n'
    printf 'listen_addr = %s\n' "${LISTEN_ADDR:-0.0.0.0}"
    printf 'listen_port = %s\n' "${LISTEN_PORT:-6432}"
    # Empty: no unix socket, unless one is asked for.
    printf 'unix_socket_dir = %s\n' "${UNIX_SOCKET_DIR:-}"
    printf 'auth_type = %s\n' "${AUTH_TYPE:-scram-sha-256}"
    printf 'auth_file = %s\n' "$USERLIST"
    printf 'pool_mode = %s\n' "$mode"
    printf 'admin_users = %s\n' "${ADMIN_USERS:-$user}"
    printf 'stats_users = %s\n' "${STATS_USERS:-$user}"
    # Clients such as JDBC and tokio-postgres send these at start-up; PgBouncer
    # refuses a start-up parameter it neither tracks nor ignores.
    printf 'ignore_startup_parameters = %s\n' \
        "${IGNORE_STARTUP_PARAMETERS:-extra_float_digits,options}"
    if [[ -n ${SERVER_RESET_QUERY+set} ]]; then
        printf 'server_reset_query = %s\n' "$SERVER_RESET_QUERY"
    elif [[ $mode != session ]]; then
        printf 'server_reset_query =\n'
    fi
    for name in "${OPTIONAL_SETTINGS[@]}"; do
        var=${name^^}
        if [[ -n ${!var:-} ]]; then
            printf '%s = %s\n' "$name" "${!var}"
        fi
    done
}

main() {
    if [[ ${1:-} == -* ]]; then
        set -- pgbouncer "$@" "$CONFIG"
    fi
    case ${1:-} in
        pgbouncer | /usr/bin/pgbouncer | /usr/sbin/pgbouncer) ;;
        *) exec "$@" ;;
    esac

    if ((EUID == 0)); then
        # PgBouncer refuses to run as root. Root only hands the configuration
        # directory over, then runs this script again as postgres (setpriv execs,
        # like the other images' gosu).
        chown -R postgres:postgres "$CONFIG_DIR"
        export HOME=/var/lib/postgresql
        exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [[ -n ${DATABASE_URL:-} ]]; then
        die "DATABASE_URL is not supported by this image; set DB_HOST, DB_PORT, DB_USER, DB_PASSWORD and DB_NAME"
    fi
    write_userlist
    if [[ ! -e $CONFIG ]]; then
        [[ -n ${DB_HOST:-} ]] || die "set DB_HOST to the PostgreSQL server's address"
        config >"$CONFIG"
        printf 'Wrote %s:\n' "$CONFIG"
        cat "$CONFIG"
    fi
    exec "$@"
}

main "$@"
