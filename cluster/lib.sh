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
# CoreDNS with the cluster's plugins only (cluster/build/coredns/main.go): "-cluster" names that plugin set.
COREDNS_BIN=$CLUSTER_HOME/bin/coredns-$COREDNS_VERSION-cluster
METRICS_SERVER_BIN=$CLUSTER_HOME/bin/metrics-server-$METRICS_SERVER_VERSION
PAUSE_BIN=$CLUSTER_HOME/bin/pause-$PAUSE_VERSION
# Images the nodes run, saved by build.sh (docker save) and imported into each node's containerd by up.sh:
# they never come from a registry, so a node starts whether or not one answers.
IMAGES=$CLUSTER_HOME/images
PAUSE_IMAGE=modelship.local/pause:$PAUSE_VERSION
COREDNS_IMAGE=modelship.local/coredns:$COREDNS_VERSION-cluster
METRICS_SERVER_IMAGE=modelship.local/metrics-server:$METRICS_SERVER_VERSION
NODE_IMAGES=("$PAUSE_IMAGE" "$COREDNS_IMAGE" "$METRICS_SERVER_IMAGE")
# image_archive TAG: where build.sh saves the image TAG.
image_archive() { echo "$IMAGES/$(tr '/:' '__' <<<"$1").tar"; }
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
DNS_SERVICE_IP=10.96.0.10
KWOK_NODE=kwok-node-0
# KWOK (simulated nodes, for scheduling at scale) only on request: MODELSHIP_KWOK=1 cluster/up.sh.
KWOK_ENABLED=${MODELSHIP_KWOK:-0}

# The real nodes: kubelets side by side on this machine, each with its own containerd, bridge, pod CIDR,
# cgroup parent and directories. A node's IP is its bridge's address, so that each node has an address of its
# own (the kubelet refuses a loopback node IP) that only this machine can reach.
NODES=(node-1 node-2)
CLUSTER_CIDR=10.244.0.0/16
# node_index NAME: 1 for node-1, ... (the third octet of its pod CIDR).
node_index() { echo "${1#node-}"; }
node_cidr() { echo "10.244.$(node_index "$1").0/24"; }
node_ip() { echo "10.244.$(node_index "$1").1"; }
node_bridge() { echo "mship-br$(node_index "$1")"; }
node_dir() { echo "$STATE/nodes/$1"; }
node_socket() { echo "$(node_dir "$1")/containerd.sock"; }
node_cgroup() { echo "modelship-$1"; }
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248
KUBE_PROXY_HEALTHZ_PORT=${MODELSHIP_KUBE_PROXY_HEALTHZ_PORT:-20256}
KUBE_PROXY_METRICS_PORT=${MODELSHIP_KUBE_PROXY_METRICS_PORT:-20249}
# Host-network add-ons listen on their node's IP at these ports.
METRICS_SERVER_PORT=20443
CNI_BIN=/usr/lib/cni

# The component order matters: each one waits on the ones before it.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
for n in "${NODES[@]}"; do COMPONENTS+=("containerd-$n" "kubelet-$n"); done
COMPONENTS+=(kube-proxy)

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

# write_file PATH: stdin to PATH, unless PATH already holds exactly that: running processes watch some of these
# files (kube-proxy exits when its configuration changes; containerd reloads the CNI directory).
write_file() {
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else chmod 644 "$tmp"; mv "$tmp" "$1"; fi
}

# stop_process NAME: SIGTERM to the process we started for NAME, SIGKILL if it is still there 10 s later.
stop_process() {
  running "$1" || return 0
  local pid; pid=$(pid_of "$1")
  log "stopping $1 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do running "$1" || return 0; sleep 0.2; done
  log "$1 ignored SIGTERM for 10s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

kubectl() { "$KUBE_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
