#!/usr/bin/env bash
# Stops the local cluster that up.sh started (only the processes whose pids it recorded) and deletes its
# state: etcd data, certificates, logs, the admin kubeconfig. The built binaries stay cached.
. "$(dirname "$0")/lib.sh"
exclusive lifecycle
# Reverse start order, so that nothing spends its last seconds retrying a dependency that went away.
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  name=${COMPONENTS[i]}
  running "$name" || continue
  pid=$(pid_of "$name")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do running "$name" || break; sleep 0.2; done
  if running "$name"; then
    log "$name ignored SIGTERM for 10s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
done
rm -rf "$STATE" "$KUBECONFIG_ADMIN"
log "cluster stopped and its state removed"
