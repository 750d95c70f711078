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

# beside NAME CMD...: starts one step in the background, each line of its output prefixed with [NAME]; `join`
# waits for every such step. The Go builds take both cores; downloads, debootstrap and pip mostly wait on the
# network and the disk, so beside the builds they cost a cold bootstrap far less than their length (measured in
# docs/toolchain.md: they slow the builds, and save about 4 of their 9 minutes).
# Each runs in its own process group (set -m), so that a bootstrap that stops early (a failed build, Ctrl-C)
# stops what it started beside, pip and debootstrap included, instead of leaving them writing after its error.
beside_pids=() beside_names=()
beside() {
  local name=$1; shift
  set -m
  ( set -o pipefail; step "$name" "$@" 2>&1 | sed -u "s/^/[$name] /" >&2 ) &
  set +m
  beside_pids+=("$!") beside_names+=("$name")
  trap stop_beside EXIT
  trap 'exit 130' INT TERM
}

stop_beside() {
  local pid
  for pid in "${beside_pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
}

# join: waits for the steps started by `beside`, and fails naming each one that failed (their output is above).
join() {
  local i failed=()
  for i in "${!beside_pids[@]}"; do
    wait "${beside_pids[$i]}" || failed+=("${beside_names[$i]}")
  done
  beside_pids=() beside_names=()
  ((${#failed[@]} == 0)) || die "bootstrap step(s) failed: ${failed[*]} (see the lines marked with their names above)"
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
