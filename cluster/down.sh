#!/usr/bin/env bash
# Stops the local cluster that up.sh started (only the processes whose pids it recorded) and removes everything
# it made: the nodes' containers, mounts, network namespaces, cgroups, bridges and iptables rules, kube-proxy's
# iptables chains, then etcd data, certificates, logs and the admin kubeconfig. The built binaries and images
# stay cached.
. "$(dirname "$0")/lib.sh"
. "$CLUSTER_SRC/nodes.sh"
exclusive lifecycle
# Reverse start order, so that nothing spends its last seconds retrying a dependency that went away.
stop_process kube-proxy
# Its KUBE-* chains in every table, which a stopped kube-proxy leaves behind.
"$KUBE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || log "kube-proxy --cleanup failed: KUBE-* iptables chains may be left"
for ((i = ${#NODES[@]} - 1; i >= 0; i--)); do
  node_stop "${NODES[i]}"
done
if [ -d "$STATE/nodes" ]; then
  kubelet_chains_remove
  # kube-proxy turned this on for NodePorts on 127.0.0.1, guarded by the KUBE-FIREWALL rule just removed: without
  # either, packets from other interfaces could reach loopback services.
  sysctl -qw net.ipv4.conf.all.route_localnet=0 || log "could not reset net.ipv4.conf.all.route_localnet to 0"
fi
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop_process "$name"
done
rm -rf "$STATE" "$KUBECONFIG_ADMIN"
log "cluster stopped and its state removed"
