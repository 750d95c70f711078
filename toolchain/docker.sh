#!/usr/bin/env bash
# A Docker Engine that answers `docker info`. On a laptop that is Docker Desktop / Docker Engine, installed by
# its owner; on a Debian machine where we are root (CI, the build machines) we install Debian's `docker.io`
# and run `dockerd` ourselves: there is no init system to do it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/env.sh"

answers() { timeout 20 docker info >/dev/null 2>&1; }

if command -v docker >/dev/null && answers; then
  echo "docker engine answers" >&2
  exit 0
fi
case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
  unix:///var/run/docker.sock | unix:///run/docker.sock) ;;
  *) die "the Docker Engine at DOCKER_HOST=$DOCKER_HOST does not answer 'docker info': start it, or unset DOCKER_HOST" ;;
esac
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  die "no Docker Engine answers 'docker info'. Install and start Docker Desktop (macOS, Windows) or Docker Engine
(Linux: your distribution's docker package, or Docker's own), make sure your user may use it (the 'docker'
group, or DOCKER_HOST for a remote engine), check with 'docker info', then run 'make bootstrap' again."
fi

if ! command -v dockerd >/dev/null; then
  echo "installing Debian's docker.io" >&2
  apt_install docker.io
fi

log_dir=/var/log/modelship
log=$log_dir/dockerd.log
mkdir -p "$log_dir"
pid=$(cat /var/run/docker.pid 2>/dev/null || true)
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
  echo "dockerd (pid $pid) is running but not answering yet: waiting for it" >&2
else
  printf '\n--- started by %s at %s\n' "$0" "$(date -u +%FT%TZ)" >> "$log"
  # Own session: the engine outlives this script and a Ctrl-C in the terminal that ran the bootstrap.
  setsid -f dockerd >> "$log" 2>&1 < /dev/null
  echo "started dockerd (log: $log)" >&2
fi

deadline=$((SECONDS + ${MODELSHIP_DOCKERD_TIMEOUT:-60}))
until answers; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    die "dockerd did not answer 'docker info' within ${MODELSHIP_DOCKERD_TIMEOUT:-60}s. Last lines of $log:
$(tail -n 20 "$log")"
  fi
  sleep 1
done
echo "docker engine answers (dockerd log: $log)" >&2
