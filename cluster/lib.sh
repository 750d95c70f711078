# Paths, ports and helpers shared by the cluster scripts: sourced, never run.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this file
set -euo pipefail
CLUSTER_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../toolchain/env.sh
. "$CLUSTER_SRC/../toolchain/env.sh"
# shellcheck source=versions.env
. "$CLUSTER_SRC/versions.env"
# shellcheck source=../toolchain/progress.sh
. "$CLUSTER_SRC/../toolchain/progress.sh"

CLUSTER_HOME=$MODELSHIP_CACHE/cluster
# Binaries survive `down.sh` and fresh clones; keyed by version so that a version bump rebuilds.
KUBE_BIN=$CLUSTER_HOME/bin/kubernetes-$KUBERNETES_VERSION
KWOK_BIN=$CLUSTER_HOME/bin/kwok-$KWOK_VERSION
ETCD_BIN=$CLUSTER_HOME/bin/etcd-$ETCD_VERSION
# Everything a running cluster owns; `down.sh` deletes it.
STATE=$CLUSTER_HOME/state
PKI=$STATE/pki
RUN=$STATE/run
LOGS=$STATE/logs
KUBECONFIG_ADMIN=$CLUSTER_HOME/kubeconfig

# Loopback only, and off the well-known ports so that a developer's own cluster can run beside this one.
CLUSTER_ADDR=127.0.0.1
ETCD_CLIENT_PORT=${MODELSHIP_ETCD_PORT:-22379}
ETCD_PEER_PORT=$((ETCD_CLIENT_PORT + 1))
API_PORT=${MODELSHIP_API_PORT:-26443}
CONTROLLER_MANAGER_PORT=${MODELSHIP_CONTROLLER_MANAGER_PORT:-20257}
SCHEDULER_PORT=${MODELSHIP_SCHEDULER_PORT:-20259}
KWOK_PORT=${MODELSHIP_KWOK_PORT:-20247}
SERVICE_CIDR=10.96.0.0/16
SERVICE_API_IP=10.96.0.1
KWOK_NODE=kwok-node-0

# The component order matters: each one waits on the ones before it.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# exclusive NAME: holds $CLUSTER_HOME/NAME.lock until the script exits, so that two test sessions (or a test
# session and `make cluster`) never start, stop or build the same thing at once.
exclusive() {
  mkdir -p "$CLUSTER_HOME"
  exec {lock_fd}>"$CLUSTER_HOME/$1.lock"
  flock "$lock_fd"
}

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
# running NAME: the process we started for NAME is alive (a reused pid of another program does not count).
running() {
  local pid; pid=$(pid_of "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1"
}

kubectl() { "$KUBE_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
