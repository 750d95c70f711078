#!/usr/bin/env bash
# Debian tools the tests and benchmarks run on the host: promtool/amtool (rule and config checks), wrk (load).
. "$(dirname "$0")/lib.sh"
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v wrk >/dev/null || need+=(wrk)
command -v debootstrap >/dev/null || need+=(debootstrap)
[ ${#need[@]} -eq 0 ] && { echo "host packages present" >&2; exit 0; }
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  die "missing host tools (${need[*]}): install them with your package manager (on Debian/Ubuntu: apt-get install ${need[*]})"
fi
# No init system in CI: keep the packages' services from starting, we run the binaries ourselves.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
