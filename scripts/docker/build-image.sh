#!/usr/bin/env bash
# Builds a local stand-in for an official database image from Debian packages,
# because no container registry is reachable on the project's machines.
#
#   build-image.sh postgres   ->  keyroute-local/postgres:15   (postgresql-15)
#   build-image.sh mariadb    ->  keyroute-local/mariadb:10.11 (mariadb-server)
#
# Steps: debootstrap a minimal bookworm with the server package, turn it into
# what the official image looks like at start (no database yet, config for
# container use, our entrypoint), and `docker import` it with the official
# image's ENTRYPOINT/CMD/ENV/EXPOSE. The Debian mirror is read from this
# machine's apt sources at run time, so no mirror host is written down here.
# Needs root and a running engine. Logs go to $KEYROUTE_STATE_DIR/build-NAME.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

readonly SUITE=bookworm
readonly DEBOOTSTRAP_TIMEOUT=900 IMPORT_TIMEOUT=300

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

# Unmounts whatever debootstrap left mounted under the root (it mounts proc
# and sys during installs, and may leave them if interrupted), then deletes
# it. --one-file-system keeps rm away from anything still mounted.
remove_rootfs() {
    local root=$1 mount_point
    [[ -d $root ]] || return 0
    awk -v root="$root" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/mounts \
        | sort -r \
        | while read -r mount_point; do umount -l "$mount_point" || true; done
    rm -rf --one-file-system "$root"
}

# Drops what a server image does not need at run time, to keep the import small.
trim_rootfs() {
    local root=$1
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
}

# Postgres: the package created a "main" cluster under Debian's layout; the
# official image instead has an empty PGDATA that its entrypoint initialises.
configure_postgres() {
    local root=$1
    rm -rf "$root"/etc/postgresql/15/main "$root"/var/lib/postgresql/15
}

# MariaDB: the package initialised /var/lib/mysql; the official image starts
# with an empty datadir. Debian binds to 127.0.0.1, which a published port
# cannot reach, so listen on all addresses; skip reverse DNS like the official
# image (there is no DNS here, and lookups would slow every connection). No
# log_error is set anywhere, so the server logs to stderr.
configure_mariadb() {
    local root=$1
    find "$root"/var/lib/mysql -mindepth 1 -delete
    cat >"$root"/etc/mysql/mariadb.conf.d/99-container.cnf <<'EOF'
# Written by keyroute's build-image.sh for container use.
[mariadbd]
bind-address = 0.0.0.0
skip-name-resolve
host-cache-size = 0
EOF
}

main() {
    local kind=${1:-}
    local packages ref changes
    case $kind in
        postgres)
            packages=postgresql-15
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
            packages=mariadb-server
            ref=$KEYROUTE_MARIADB_LOCAL
            changes=(
                'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
                'CMD ["mariadbd"]'
                'ENV LANG=C.UTF-8'
                'EXPOSE 3306'
            )
            ;;
        *) die "usage: build-image.sh postgres|mariadb" ;;
    esac

    ((EUID == 0)) || die "build-image.sh needs root (debootstrap)"
    command -v debootstrap >/dev/null || keyroute_apt_install debootstrap debian-archive-keyring \
        || die "cannot install debootstrap"

    local mirror log root change change_args=()
    mirror=$(debian_mirror)
    mkdir -p "$KEYROUTE_STATE_DIR"
    log=$KEYROUTE_STATE_DIR/build-$kind.log
    root=$(mktemp -d "$KEYROUTE_STATE_DIR/rootfs-$kind.XXXXXX")
    # shellcheck disable=SC2064 # expand $root now: it is local to main
    trap "remove_rootfs '$root'" EXIT

    keyroute_say "building $ref: debootstrap $SUITE + $packages (log: $log)"
    if ! timeout "$DEBOOTSTRAP_TIMEOUT" debootstrap --variant=minbase --include="$packages" \
        "$SUITE" "$root" "$mirror" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "debootstrap failed or took over $DEBOOTSTRAP_TIMEOUT s"
    fi

    "configure_$kind" "$root"
    trim_rootfs "$root"
    mkdir -p "$root"/docker-entrypoint-initdb.d
    install -m 0755 "$here/$kind-entrypoint.sh" "$root"/usr/local/bin/docker-entrypoint.sh

    for change in "${changes[@]}"; do change_args+=(--change "$change"); done
    keyroute_say "importing $ref"
    # --numeric-owner: the image must keep the rootfs's own uids (postgres,
    # mysql), not the build host's names for them.
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    timeout "$IMPORT_TIMEOUT" bash -c 'set -o pipefail; tar -C "$1" --numeric-owner -c . | docker import "${@:3}" - "$2" >/dev/null' \
        _ "$root" "$ref" "${change_args[@]}" \
        || die "docker import of $ref failed or took over $IMPORT_TIMEOUT s"
    keyroute_say "built $ref"
}

main "$@"
