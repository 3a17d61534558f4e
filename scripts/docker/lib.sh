# shellcheck shell=bash
# Docker engine and server images for keyroute's container tests.
#
# Source this file, then call `keyroute_docker_up` before the tests and
# `keyroute_docker_down` after them (it is safe in `trap ... EXIT`).
#
# Why this exists: the project's machines have the docker client but no running
# engine, and no container registry is reachable, so the official postgres,
# mariadb and redis images, and the community pgbouncer image, cannot be
# pulled. `keyroute_docker_up` starts Debian's engine when none answers and
# builds stand-in images from Debian packages (build-image.sh, all missing
# images from one base) that keep the official images' contract: same
# environment variables, same readiness log lines. The Rust harness then reads
#   KEYROUTE_POSTGRES_IMAGE  / KEYROUTE_POSTGRES_TAG
#   KEYROUTE_MARIADB_IMAGE   / KEYROUTE_MARIADB_TAG
#   KEYROUTE_REDIS_IMAGE     / KEYROUTE_REDIS_TAG
#   KEYROUTE_PGBOUNCER_IMAGE / KEYROUTE_PGBOUNCER_TAG
# and needs no special case for local images. It also exports DOCKER_HOST
# when the engine listens on loopback TCP (see KEYROUTE_DOCKER_TCP).
#
# This file only defines things: it sets no shell options, because it runs
# inside its caller's shell. Functions return non-zero on failure.

KEYROUTE_DOCKER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEYROUTE_STATE_DIR=${KEYROUTE_STATE_DIR:-/tmp/keyroute-docker}

# Image references, KEYROUTE_<KIND>_OFFICIAL and _LOCAL for each kind of
# KEYROUTE_IMAGE_KINDS (a kind is build-image.sh's argument; in upper case it
# names the variables). The official tags match the PostgreSQL, MariaDB, Redis
# and PgBouncer versions that Debian bookworm ships, so either image runs the
# same server. Redis 7.0 speaks the protocol Valkey does (Debian packages Valkey
# from trixie on). PgBouncer has no official image: its "official" one is the
# widely used community image edoburu/pgbouncer, whose environment variables
# the local one takes (pgbouncer-entrypoint.sh says where it differs).
KEYROUTE_IMAGE_KINDS=(postgres mariadb redis pgbouncer)
# shellcheck disable=SC2034 # read by name (${!var}) below, and by build-image.sh
{
    KEYROUTE_POSTGRES_OFFICIAL=postgres:15
    KEYROUTE_POSTGRES_LOCAL=keyroute-local/postgres:15
    KEYROUTE_MARIADB_OFFICIAL=mariadb:10.11
    KEYROUTE_MARIADB_LOCAL=keyroute-local/mariadb:10.11
    KEYROUTE_REDIS_OFFICIAL=redis:7.0
    KEYROUTE_REDIS_LOCAL=keyroute-local/redis:7.0
    KEYROUTE_PGBOUNCER_OFFICIAL=edoburu/pgbouncer:1.18.0
    KEYROUTE_PGBOUNCER_LOCAL=keyroute-local/pgbouncer:1.18
}

# Where our engine also listens, and what keyroute_docker_up exports as
# DOCKER_HOST. testcontainers' get_host() derives the container host from
# DOCKER_HOST: over a unix socket on a machine that has /.dockerenv (ours do)
# it answers the docker bridge's gateway, a private address the tests must not
# use; over tcp://127.0.0.1 it answers 127.0.0.1.
KEYROUTE_DOCKER_TCP=tcp://127.0.0.1:2375

# The PID of the dockerd that keyroute_docker_up started; empty when it reused
# an engine that was already running, which keyroute_docker_down must not stop.
_KEYROUTE_DOCKERD_PID=

keyroute_say() {
    printf '[docker] %s\n' "$*" >&2
}

# Answers whether an engine responds, bounded so that a hung socket cannot
# stall the caller.
_keyroute_engine_answers() {
    timeout 10 docker info >/dev/null 2>&1
}

# Installs Debian packages non-interactively. A fresh machine may have no
# package lists yet, so on failure it refreshes them once and retries.
# Output goes to a log in the state dir; the tail is shown on failure.
keyroute_apt_install() {
    local log=$KEYROUTE_STATE_DIR/apt.log
    local install=(timeout 600 apt-get -qq -y -o Dpkg::Use-Pty=0
        --no-install-recommends install "$@")
    mkdir -p "$KEYROUTE_STATE_DIR" || return 1
    export DEBIAN_FRONTEND=noninteractive
    "${install[@]}" >>"$log" 2>&1 && return 0
    if timeout 300 apt-get -qq update >>"$log" 2>&1 \
        && "${install[@]}" >>"$log" 2>&1; then
        return 0
    fi
    keyroute_say "apt-get install $* failed; last lines of $log:"
    tail -n 20 "$log" >&2
    return 1
}

# Starts Debian's dockerd in the background (installing docker.io first if
# needed) and waits until it answers. It listens on its usual unix socket and
# on $KEYROUTE_DOCKER_TCP (loopback only), and publishes container ports on
# 127.0.0.1 only: the test databases have well-known passwords. dockerd picks
# its storage driver itself (overlay2 where the kernel allows it). Its output
# goes to a log file, never to the caller's stdout, so a caller reading our
# output through a pipe is not held open by the engine. Published ports are
# forwarded by the kernel (--userland-proxy=false) rather than by a
# docker-proxy process per port: on a 2-core machine that process copied every
# byte of every test and benchmark round trip on the cores the client and
# server also need (measured: the Valkey-backed HTTP benchmark mode gained
# most of its gap back without it).
_keyroute_start_engine() {
    local log=$KEYROUTE_STATE_DIR/dockerd.log deadline
    if ! command -v dockerd >/dev/null; then
        keyroute_say "no engine answers; installing Debian's docker.io"
        keyroute_apt_install docker.io || return 1
    fi
    mkdir -p "$KEYROUTE_STATE_DIR" || return 1
    keyroute_say "starting dockerd (log: $log)"
    dockerd -H unix:///var/run/docker.sock -H "$KEYROUTE_DOCKER_TCP" --ip 127.0.0.1 \
        --userland-proxy=false \
        </dev/null >"$log" 2>&1 &
    _KEYROUTE_DOCKERD_PID=$!
    export DOCKER_HOST=$KEYROUTE_DOCKER_TCP
    deadline=$((SECONDS + 60))
    until _keyroute_engine_answers; do
        if ! kill -0 "$_KEYROUTE_DOCKERD_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            keyroute_say "dockerd did not come up; last lines of $log:"
            tail -n 20 "$log" >&2
            keyroute_say "fix the engine (or set DOCKER_HOST to a working one) and rerun"
            keyroute_docker_down
            return 1
        fi
        sleep 0.5
    done
}

# Answers whether the image NAME:TAG is in the engine's image store.
_keyroute_image_present() {
    docker image inspect "$1" >/dev/null 2>&1
}

# Exports KEYROUTE_<DB>_IMAGE and KEYROUTE_<DB>_TAG from the reference NAME:TAG.
#   $1: DB in upper case (POSTGRES, MARIADB, REDIS, PGBOUNCER); $2: NAME:TAG
_keyroute_export_image() {
    export "KEYROUTE_$1_IMAGE=${2%:*}" "KEYROUTE_$1_TAG=${2##*:}"
}

# Finds an image for one kind of server and exports its variables. Order: the
# user's own choice if present, the official image if present, our local build
# if present (so later runs are fast), a bounded pull of the official image.
# Returns 1 when none can be had: the caller builds the local image.
#   $1: kind (postgres, mariadb, redis, pgbouncer)
_keyroute_find_image() {
    local db=${1^^}
    local image_var=KEYROUTE_${db}_IMAGE tag_var=KEYROUTE_${db}_TAG
    local official_var=KEYROUTE_${db}_OFFICIAL local_var=KEYROUTE_${db}_LOCAL ref

    if [[ -n ${!image_var:-} ]]; then
        ref=${!image_var}:${!tag_var:-latest}
        if _keyroute_image_present "$ref"; then
            _keyroute_export_image "$db" "$ref"
            return 0
        fi
        keyroute_say "$image_var/$tag_var name $ref, which is not in the engine; ignoring them"
    fi

    for ref in "${!official_var}" "${!local_var}"; do
        if _keyroute_image_present "$ref"; then
            _keyroute_export_image "$db" "$ref"
            return 0
        fi
    done

    # No registry is reachable on the project's machines (the pull fails at
    # once there); the timeout bounds it where a registry is slow.
    if timeout 20 docker pull -q "${!official_var}" >/dev/null 2>&1; then
        _keyroute_export_image "$db" "${!official_var}"
        return 0
    fi

    keyroute_say "${!official_var} cannot be pulled; building ${!local_var}"
    return 1
}

# Makes an image available for every kind of server, and exports the image
# variables. The missing images are built together, in one build-image.sh run,
# so they share its one debootstrap. An image that was built is exported even
# when another failed.
_keyroute_choose_images() {
    local kind local_var missing=() status=0
    for kind in "${KEYROUTE_IMAGE_KINDS[@]}"; do
        _keyroute_find_image "$kind" || missing+=("$kind")
    done
    ((${#missing[@]} > 0)) || return 0
    "$KEYROUTE_DOCKER_DIR/build-image.sh" "${missing[@]}" || status=1
    for kind in "${missing[@]}"; do
        local_var=KEYROUTE_${kind^^}_LOCAL
        if _keyroute_image_present "${!local_var}"; then
            _keyroute_export_image "${kind^^}" "${!local_var}"
        else
            status=1
        fi
    done
    return "$status"
}

# Makes a docker engine answer and the server images available, and exports
# the image variables the Rust harness reads. Reuses whatever already exists.
keyroute_docker_up() {
    if ! command -v docker >/dev/null; then
        keyroute_say "the docker client is missing; install it (apt-get install docker.io) and rerun"
        return 1
    fi
    if [[ -n ${DOCKER_HOST:-} ]]; then
        if ! _keyroute_engine_answers; then
            keyroute_say "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine, or unset DOCKER_HOST to use a local one"
            return 1
        fi
        keyroute_say "reusing the engine at DOCKER_HOST=$DOCKER_HOST"
    elif DOCKER_HOST=$KEYROUTE_DOCKER_TCP _keyroute_engine_answers; then
        export DOCKER_HOST=$KEYROUTE_DOCKER_TCP
        keyroute_say "reusing the engine at $DOCKER_HOST"
    elif _keyroute_engine_answers; then
        keyroute_say "reusing the engine on the default socket"
        if [[ -e /.dockerenv ]]; then
            keyroute_say "warning: testcontainers' get_host() will name the docker bridge, not 127.0.0.1, for this engine; restart it with -H $KEYROUTE_DOCKER_TCP"
        fi
    else
        _keyroute_start_engine || return 1
    fi
    _keyroute_choose_images || return 1
    keyroute_say "postgres: $KEYROUTE_POSTGRES_IMAGE:$KEYROUTE_POSTGRES_TAG, mariadb: $KEYROUTE_MARIADB_IMAGE:$KEYROUTE_MARIADB_TAG, redis: $KEYROUTE_REDIS_IMAGE:$KEYROUTE_REDIS_TAG, pgbouncer: $KEYROUTE_PGBOUNCER_IMAGE:$KEYROUTE_PGBOUNCER_TAG"
}

# Removes containers left by a test binary that was killed before its exit hook
# could remove them (the Rust harness labels every container it starts).
keyroute_remove_leftover_containers() {
    local leftovers
    leftovers=$(docker ps -aq --filter label=org.keyroute.harness 2>/dev/null) || return 0
    [[ -n $leftovers ]] || return 0
    keyroute_say "removing leftover test containers: $(tr '\n' ' ' <<<"$leftovers")"
    # shellcheck disable=SC2086 # one id per word
    docker rm -f -v $leftovers >/dev/null 2>&1 || true
}

# Stops the dockerd that keyroute_docker_up started, and nothing else. dockerd
# stops its containers and its containerd on SIGTERM; SIGKILL only if it hangs.
keyroute_docker_down() {
    local pid=$_KEYROUTE_DOCKERD_PID deadline
    [[ -n $pid ]] || return 0
    _KEYROUTE_DOCKERD_PID=
    # _keyroute_start_engine exported it for this engine, which is going away.
    unset DOCKER_HOST
    keyroute_say "stopping the dockerd we started ($pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            keyroute_say "dockerd ($pid) ignored SIGTERM for 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.2
    done
    wait "$pid" 2>/dev/null
    return 0
}
