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
apt_install "${need[@]}"
