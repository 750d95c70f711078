# Shared helpers for the toolchain scripts: sourced, never run.
# shellcheck shell=bash
set -euo pipefail
# shellcheck source=progress.sh
. "$(dirname "${BASH_SOURCE[0]}")/progress.sh"

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

# apt_install PKG...: Debian packages for the host. CI has no init system, so the packages' services are kept
# from starting (policy-rc.d); the scripts start what they need themselves.
apt_install() {
  [ -x /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; }
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
