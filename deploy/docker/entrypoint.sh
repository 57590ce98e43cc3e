#!/bin/sh
# Entrypoint of the Sinergi image: `<service> [command ...]` runs
# `python -m services.<service> [command ...]`; anything else is executed as given
# (e.g. `python -m services.complaints migrate`, `sh`).
set -e

usage() {
    echo "usage: <service> [serve|migrate|republish --since TIME|replay-dead-letters]"
    echo "services:" $(ls /app/services | grep -v '^__' | grep -v '\.')
}

case "${1:-}" in
    "" | -h | --help)
        usage
        exit 0
        ;;
esac

case "$1" in
    *[!a-z_]*) ;;  # not a service name: run it as a command
    *)
        if [ -f "/app/services/$1/__main__.py" ]; then
            service="$1"
            shift
            exec python -m "services.${service}" "$@"
        fi
        ;;
esac
exec "$@"
