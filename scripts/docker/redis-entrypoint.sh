#!/usr/bin/env bash
# Entrypoint of keyroute's local redis image (see build-image.sh), the stand-in
# for the official redis:7.0 image (Debian bookworm ships Redis 7.0, which speaks
# the protocol Valkey does). It keeps the official image's contract so that
# clients, testcontainers included, need no special case:
#   - no configuration file: the server listens on port 6379 on all addresses
#     (Redis's built-in default), with protected mode off (the official image
#     builds Redis with that default off; Debian's has it on, so this script
#     passes `--protected-mode no` ahead of the caller's own options, which can
#     still turn it on, as can a configuration file that sets it);
#   - it runs as the redis user, in /data (WORKDIR), with umask 0077: root only
#     hands /data over to redis and runs this script again as redis (setpriv
#     execs, like the official image's gosu);
#   - it logs to STDOUT, "Ready to accept connections" once it listens;
#   - arguments: `IMAGE --save '' --appendonly no` runs `redis-server --save ''
#     --appendonly no`, as does `IMAGE redis-server --save ...`; a first argument
#     ending in .conf is a configuration file for redis-server; any other
#     command runs as is.
set -Eeuo pipefail

main() {
    if [[ ${1:-} == -* || ${1:-} == *.conf ]]; then
        set -- redis-server "$@"
    fi
    if [[ ${1:-} != redis-server ]]; then
        exec "$@"
    fi

    if ((EUID == 0)); then
        find . \! -user redis -exec chown redis '{}' +
        exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [[ $(umask) == 0022 ]]; then
        umask 0077
    fi

    # redis-server [CONFIG-FILE | -] [--option value...]: options given later win,
    # and Redis reads the first argument alone when it asks for its version or help.
    local args=("$@") lead=1
    case ${args[1]:-} in
        -v | --version | -h | --help | --test-memory | --check-system) exec "${args[@]}" ;;
        -) lead=2 ;;
        -*) ;;
        ?*)
            lead=2
            if grep -Eqi '^[[:space:]]*protected-mode[[:space:]]' "${args[1]}" 2>/dev/null; then
                exec "${args[@]}"
            fi
            ;;
    esac
    exec "${args[@]:0:lead}" --protected-mode no "${args[@]:lead}"
}

main "$@"
