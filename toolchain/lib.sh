# Shared helpers for the toolchain scripts: sourced, never run.
# shellcheck shell=bash
set -euo pipefail

# step NAME CMD...: runs one bootstrap step and prints its duration, so a slow cold run shows where it went.
step() {
  local name=$1; shift
  local start=$SECONDS
  printf '==> %s\n' "$name" >&2
  "$@"
  printf '<== %s (%ss)\n' "$name" "$((SECONDS - start))" >&2
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}
