#!/usr/bin/env bash
# Builds local stand-ins for official images from Debian packages, because no
# container registry is reachable on the project's machines.
#
#   build-image.sh postgres   ->  keyroute-local/postgres:15   (postgresql-15)
#   build-image.sh mariadb    ->  keyroute-local/mariadb:10.11 (mariadb-server)
#   build-image.sh redis      ->  keyroute-local/redis:7.0     (redis-server)
#   build-image.sh pgbouncer  ->  keyroute-local/pgbouncer:1.18 (pgbouncer)
#   build-image.sh postgres mariadb redis pgbouncer   (several at once, sharing the base)
#
# Steps: debootstrap a minimal bookworm once (the base, about 30 s); then for
# each image, copy the base, install the server package into the copy (apt-get
# in a chroot, from the package lists debootstrap fetched: a few seconds), turn
# it into what the official image looks like at start (no database yet, config
# for container use, our entrypoint), and `docker import` it with the official
# image's ENTRYPOINT/CMD/ENV/EXPOSE. The base is deleted when the script ends.
# The Debian mirror is read from this machine's apt sources at run time, so no
# mirror host is written down here. Needs root and a running engine. Logs go to
# $KEYROUTE_STATE_DIR/build-base.log and build-NAME.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

readonly SUITE=bookworm
readonly DEBOOTSTRAP_TIMEOUT=900 INSTALL_TIMEOUT=600 IMPORT_TIMEOUT=300

# The root file systems this run made, deleted when it ends (remove_roots).
ROOTS=()

die() {
    keyroute_say "$*"
    exit 1
}

# Prints the URI of the apt source that serves Debian's main suite: first from
# the deb822 file, then from the one-line sources.list.
debian_mirror() {
    local deb822=/etc/apt/sources.list.d/debian.sources one_line=/etc/apt/sources.list uri=
    if [[ -r $deb822 ]]; then
        # A stanza ends at a blank line; print the URIs of the first one that
        # is a binary source carrying $SUITE.
        uri=$(awk -v suite="$SUITE" '
            function flush() { if (!found && deb && has_suite && uri != "") { print uri; found = 1 } deb = has_suite = 0; uri = "" }
            /^[[:space:]]*$/ { flush(); next }
            $1 == "Types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
            $1 == "URIs:" { uri = $2 }
            $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
            END { flush() }
        ' "$deb822")
    fi
    if [[ -z $uri && -r $one_line ]]; then
        # deb [options] URI SUITE COMPONENTS...
        uri=$(awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }
        ' "$one_line")
    fi
    [[ -n $uri ]] || die "no apt source for Debian $SUITE in $deb822 or $one_line"
    printf '%s\n' "$uri"
}

# Unmounts whatever was left mounted under the root (debootstrap mounts proc
# and sys during installs, install_packages mounts proc, and either may leave
# them if interrupted), then deletes it. --one-file-system keeps rm away from anything still mounted.
remove_rootfs() {
    local root=$1 mount_point
    [[ -d $root ]] || return 0
    awk -v root="$root" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/mounts \
        | sort -r \
        | while read -r mount_point; do umount -l "$mount_point" || true; done
    rm -rf --one-file-system "$root"
}

remove_roots() {
    local root
    for root in "${ROOTS[@]}"; do remove_rootfs "$root"; done
}

# Makes a new, empty root file system directory in the state dir, deleted at
# exit, and names it in NEW_ROOT (not printed: a command substitution's subshell
# could not add it to ROOTS).
#   $1: what it is for (base, postgres, ...)
new_root() {
    NEW_ROOT=$(mktemp -d "$KEYROUTE_STATE_DIR/rootfs-$1.XXXXXX") \
        || die "cannot make a directory in $KEYROUTE_STATE_DIR"
    ROOTS+=("$NEW_ROOT")
}

# Installs packages into a copy of the base with apt-get in a chroot. The
# package lists are the ones debootstrap fetched for the base, so the versions
# are those debootstrap's --include would pick, from the same mirror (which
# debootstrap wrote into the root's sources.list). As during debootstrap, /proc
# is mounted for the packages' scripts, and a policy-rc.d keeps them from
# starting their services.
#   $1: root; $2: log; $3...: packages
install_packages() {
    local root=$1 log=$2 status=0
    shift 2
    printf '#!/bin/sh\nexit 101\n' >"$root"/usr/sbin/policy-rc.d
    chmod 0755 "$root"/usr/sbin/policy-rc.d
    mount -t proc proc "$root"/proc || return 1
    timeout "$INSTALL_TIMEOUT" chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        apt-get -q -y -o Dpkg::Use-Pty=0 --no-install-recommends install "$@" >"$log" 2>&1 \
        || status=$?
    umount "$root"/proc || status=1
    rm -f "$root"/usr/sbin/policy-rc.d
    return "$status"
}

# Drops what a server image does not need at run time, to keep the import small.
trim_rootfs() {
    local root=$1
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
        "$root"/var/lib/apt/lists/* "$root"/var/log/apt/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
}

# Postgres: the package created a "main" cluster under Debian's layout; the
# official image instead has an empty PGDATA that its entrypoint initialises.
configure_postgres() {
    local root=$1
    rm -rf "$root"/etc/postgresql/15/main "$root"/var/lib/postgresql/15
    mkdir -p "$root"/docker-entrypoint-initdb.d
}

# MariaDB: the package initialised /var/lib/mysql; the official image starts
# with an empty datadir. Debian binds to 127.0.0.1, which a published port
# cannot reach, so listen on all addresses; skip reverse DNS like the official
# image (there is no DNS here, and lookups would slow every connection). No
# log_error is set anywhere, so the server logs to stderr.
configure_mariadb() {
    local root=$1
    find "$root"/var/lib/mysql -mindepth 1 -delete
    mkdir -p "$root"/docker-entrypoint-initdb.d
    cat >"$root"/etc/mysql/mariadb.conf.d/99-container.cnf <<'EOF'
# Written by keyroute's build-image.sh for container use.
[mariadbd]
bind-address = 0.0.0.0
skip-name-resolve
host-cache-size = 0
EOF
}

# Redis: the official image runs redis-server with no configuration file, as
# the redis user, in /data; the entrypoint does the rest. The package's own
# /etc/redis/redis.conf stays unused.
configure_redis() {
    local root=$1
    mkdir -p "$root"/data
    chroot "$root" chown redis:redis /data
}

# PgBouncer: the package wrote a configuration and userlist for Debian's own
# service; the image instead starts with none and its entrypoint writes both
# from the environment, as the postgres user (PgBouncer refuses root), so that
# user gets the directory. edoburu's image runs /usr/bin/pgbouncer (its CMD,
# which users repeat in their own commands); Debian installs it in /usr/sbin.
configure_pgbouncer() {
    local root=$1
    rm -f "$root"/etc/pgbouncer/pgbouncer.ini "$root"/etc/pgbouncer/userlist.txt
    chroot "$root" chown postgres:postgres /etc/pgbouncer
    ln -s ../sbin/pgbouncer "$root"/usr/bin/pgbouncer
}

# What each image is: the packages, the reference, the official image's
# settings. Sets `packages`, `ref` and `changes` in the caller.
#   $1: postgres, mariadb, redis or pgbouncer
describe() {
    case $1 in
        postgres)
            packages=(postgresql-15)
            ref=$KEYROUTE_POSTGRES_LOCAL
            changes=(
                'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
                'CMD ["postgres"]'
                'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
                'ENV PGDATA=/var/lib/postgresql/data'
                'ENV LANG=C.UTF-8'
                'EXPOSE 5432'
                # The official STOPSIGNAL SIGINT is left out: Debian's engine
                # (20.10) refuses it in an import.
            )
            ;;
        mariadb)
            packages=(mariadb-server)
            ref=$KEYROUTE_MARIADB_LOCAL
            changes=(
                'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
                'CMD ["mariadbd"]'
                'ENV LANG=C.UTF-8'
                'EXPOSE 3306'
            )
            ;;
        redis)
            packages=(redis-server)
            ref=$KEYROUTE_REDIS_LOCAL
            changes=(
                'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
                'CMD ["redis-server"]'
                'WORKDIR /data'
                'EXPOSE 6379'
                # The official VOLUME /data is left out, as the other images
                # leave out theirs: test servers keep nothing.
            )
            ;;
        pgbouncer)
            packages=(pgbouncer)
            ref=$KEYROUTE_PGBOUNCER_LOCAL
            changes=(
                'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
                'CMD ["/usr/bin/pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]'
                'ENV LANG=C.UTF-8'
                # PgBouncer's own port, which the entrypoint defaults to
                # (edoburu's image listens on 5432 unless LISTEN_PORT says).
                'EXPOSE 6432'
            )
            ;;
        *) return 1 ;;
    esac
}

# Builds one image from a copy of the base root.
#   $1: kind; $2: the base root
build() {
    local kind=$1 base=$2
    local packages ref changes root log change change_args=()
    describe "$kind"
    log=$KEYROUTE_STATE_DIR/build-$kind.log
    new_root "$kind"
    root=$NEW_ROOT

    keyroute_say "building $ref: the base + ${packages[*]} (log: $log)"
    cp -a "$base"/. "$root"/ || die "cannot copy the base root"
    if ! install_packages "$root" "$log" "${packages[@]}"; then
        tail -n 20 "$log" >&2
        die "installing ${packages[*]} failed or took over $INSTALL_TIMEOUT s"
    fi

    "configure_$kind" "$root"
    trim_rootfs "$root"
    install -m 0755 "$here/$kind-entrypoint.sh" "$root"/usr/local/bin/docker-entrypoint.sh

    for change in "${changes[@]}"; do change_args+=(--change "$change"); done
    keyroute_say "importing $ref"
    # --numeric-owner: the image must keep the rootfs's own uids (postgres,
    # mysql, redis), not the build host's names for them.
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    timeout "$IMPORT_TIMEOUT" bash -c 'set -o pipefail; tar -C "$1" --numeric-owner -c . | docker import "${@:3}" - "$2" >/dev/null' \
        _ "$root" "$ref" "${change_args[@]}" \
        || die "docker import of $ref failed or took over $IMPORT_TIMEOUT s"
    remove_rootfs "$root"
    keyroute_say "built $ref"
}

main() {
    local kind packages ref changes
    (($# > 0)) || die "usage: build-image.sh postgres|mariadb|redis|pgbouncer..."
    for kind in "$@"; do
        describe "$kind" || die "usage: build-image.sh postgres|mariadb|redis|pgbouncer..."
    done

    ((EUID == 0)) || die "build-image.sh needs root (debootstrap)"
    command -v debootstrap >/dev/null || keyroute_apt_install debootstrap debian-archive-keyring \
        || die "cannot install debootstrap"

    local mirror log base
    mirror=$(debian_mirror)
    mkdir -p "$KEYROUTE_STATE_DIR"
    trap remove_roots EXIT
    log=$KEYROUTE_STATE_DIR/build-base.log
    new_root base
    base=$NEW_ROOT

    keyroute_say "debootstrap $SUITE for $* (log: $log)"
    if ! timeout "$DEBOOTSTRAP_TIMEOUT" debootstrap --variant=minbase \
        "$SUITE" "$base" "$mirror" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "debootstrap failed or took over $DEBOOTSTRAP_TIMEOUT s"
    fi

    for kind in "$@"; do
        build "$kind" "$base"
    done
}

main "$@"
