#!/bin/sh
# registry:2's entrypoint: a config file path or a registry subcommand becomes `registry ...`.
set -e
case "$1" in
  *.yaml|*.yml) set -- registry serve "$@" ;;
  serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac
exec "$@"
