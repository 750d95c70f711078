# The real worker nodes: what up.sh starts and down.sh stops for each of $NODES. Sourced after lib.sh, never run.
#
# Layout: every node is a set of host processes side by side in this machine's network namespace (as
# `local-up-cluster.sh` runs one), not a privileged node container (as kind does): its own containerd
# (socket, root, state, runc root), its own kubelet (root dir, certificates, cgroup parent /modelship-NODE in
# every cgroup v1 hierarchy) and its own Linux bridge, whose address is the node's IP and the gateway of its
# pod CIDR. Pods of different nodes reach each other through this machine's routing table, as nodes on one
# L2 segment with host-gateway routes would. One kube-proxy serves both nodes (see up.sh).
# shellcheck shell=bash

# The cgroup hierarchies the kubelet and runc use: a node's cgroup parent must exist in each of them.
CGROUP_V1=/sys/fs/cgroup

node_cgroup_dirs() {
  local n=$1 h
  # `unified` (the v2 hierarchy of a hybrid host) too: runc mirrors each container's cgroup there.
  for h in "$CGROUP_V1"/*/; do
    echo "${h%/}/$(node_cgroup "$n")"
  done
}

# node_prepare NAME: bridge, cgroup parent, directories and configuration files of node NAME (idempotent).
node_prepare() {
  local n=$1 dir br ip cidr
  dir=$(node_dir "$n") br=$(node_bridge "$n") ip=$(node_ip "$n") cidr=$(node_cidr "$n")
  mkdir -p "$dir"/{kubelet,containerd/root,containerd/state,containerd/opt,runc,cni,ipam,certs.d/localhost:5000,logs}

  if ! ip link show "$br" >/dev/null 2>&1; then
    ip link add "$br" type bridge || die "cannot create the bridge $br for $n: the nodes need CAP_NET_ADMIN"
  fi
  ip addr replace "$ip/24" dev "$br"
  ip link set "$br" up
  # Pods reach pods of the other node through this machine's routing (the CNI bridge plugin also sets it).
  sysctl -qw net.ipv4.ip_forward=1 || die "cannot enable net.ipv4.ip_forward: pods of the two nodes could not reach each other"

  local cg
  for cg in $(node_cgroup_dirs "$n"); do
    mkdir -p "$cg" || die "cannot create the cgroup $cg for $n"
    # A new cpuset cgroup starts empty: its tasks could run nowhere.
    case $cg in
      "$CGROUP_V1"/cpuset/*)
        [ -n "$(cat "$cg/cpuset.cpus")" ] || cat "$CGROUP_V1/cpuset/cpuset.cpus" >"$cg/cpuset.cpus"
        [ -n "$(cat "$cg/cpuset.mems")" ] || cat "$CGROUP_V1/cpuset/cpuset.mems" >"$cg/cpuset.mems" ;;
    esac
  done

  # Plain HTTP for the project's local registry (the pods' images are pulled from it by digest).
  write_file "$dir/certs.d/localhost:5000/hosts.toml" <<EOF
server = "http://localhost:5000"
[host."http://localhost:5000"]
  capabilities = ["pull", "resolve"]
EOF

  write_file "$dir/containerd-$n.toml" <<EOF
# containerd of $n, written by cluster/up.sh: private socket, root, state and runc root; CRI on.
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$(node_socket "$n")"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This sandbox lacks CAP_SYS_RESOURCE: without this, runc cannot lower a container's oom_score_adj and every
  # pod sandbox fails ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  # Kubelets proxy exec/attach/port-forward streams to this server; port 0 lets the two nodes' runtimes coexist.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$dir/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/certs.d"
EOF

  # No masquerading: pod-to-pod traffic keeps its addresses across nodes, as in a multi-machine cluster, and
  # pods have nowhere beyond this machine to go. The firewall plugin admits pod traffic past the FORWARD
  # chain's DROP policy that the Docker engine sets.
  write_file "$dir/cni/10-$n.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "modelship-$n",
  "plugins": [
    {"type": "bridge", "bridge": "$br", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$dir/ipam",
              "ranges": [[{"subnet": "$cidr", "gateway": "$ip"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"}
  ]
}
EOF

  write_file "$dir/kubelet-$n.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The node's own bridge address: reachable from this machine only, and a port per node is not needed.
address: $ip
port: $KUBELET_PORT
healthzBindAddress: $ip
healthzPort: $KUBELET_HEALTHZ_PORT
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/$n-serving.crt
tlsPrivateKeyFile: $PKI/$n-serving.key
containerRuntimeEndpoint: unix://$(node_socket "$n")
# This host mounts cgroup v1, which kubelets >= 1.35 refuse unless told; no systemd manages the cgroups.
failCgroupV1: false
cgroupDriver: cgroupfs
# Each node its own cgroup parent: a kubelet removes pod cgroups it does not know under its root.
cgroupRoot: /$(node_cgroup "$n")
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
failSwapOn: false
serializeImagePulls: false
maxPods: 50
volumePluginDir: $dir/kubelet/volume-plugins
# Images imported from local builds have no registry to come back from: collect them only when the disk is full.
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
evictionHard: {memory.available: 200Mi, nodefs.available: 5%, imagefs.available: 5%}
EOF
}

# node_import_images NAME: the images every node runs without a registry (pause, CoreDNS, metrics-server).
node_import_images() {
  local n=$1 have tag
  have=$(ctr --address "$(node_socket "$n")" --namespace k8s.io images list --quiet)
  for tag in "${NODE_IMAGES[@]}"; do
    grep -qxF "$tag" <<<"$have" && continue
    ctr --address "$(node_socket "$n")" --namespace k8s.io images import "$(image_archive "$tag")" >/dev/null ||
      die "importing $(image_archive "$tag") into $n's containerd failed"
  done
}

# iptables_delete TABLE REGEX [IPTABLES]: deletes the rules of TABLE whose `-S` line matches REGEX.
iptables_delete() {
  local cmd=${3:-iptables} rule
  { "$cmd" -w -t "$1" -S 2>/dev/null || true; } | { grep -E -- "$2" || true; } | while read -r rule; do
    # shellcheck disable=SC2086  # the rule is iptables' own words, split as iptables printed them
    "$cmd" -w -t "$1" ${rule/-A /-D } 2>/dev/null || true
  done
}

# kubelet_chains_remove: the chains every kubelet keeps (KUBE-FIREWALL, KUBE-KUBELET-CANARY), once none runs.
kubelet_chains_remove() {
  local cmd table chain
  for cmd in iptables ip6tables; do
    for table in filter nat mangle; do
      iptables_delete "$table" "-A [A-Z]+ .*-j KUBE-(FIREWALL|KUBELET-CANARY)" "$cmd"
      for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY; do
        "$cmd" -w -t "$table" -F "$chain" 2>/dev/null && "$cmd" -w -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# node_stop NAME: kills node NAME's containers, then its runtime, and removes what it left on the host: mounts,
# network namespaces, shims, cgroups, iptables rules of its pods and its bridge.
node_stop() {
  local n=$1 dir sock pid
  dir=$(node_dir "$n") sock=$(node_socket "$n")
  # Only a node this cluster's state knows: the bridge and cgroup names are the machine's, not the state's.
  [ -d "$dir" ] || return 0
  stop_process "kubelet-$n"
  local netns=()
  if running "containerd-$n"; then
    local ctr_=(ctr --address "$sock" --namespace k8s.io) id
    # The sandboxes' network namespaces, before the containers that name them are gone.
    mapfile -t netns < <(for id in $("${ctr_[@]}" containers list --quiet 2>/dev/null); do
      "${ctr_[@]}" containers info "$id" 2>/dev/null |
        sed -n 's|.*"path": "\(/var/run/netns/[^"]*\)".*|\1|p; s|.*"path": "\(/run/netns/[^"]*\)".*|\1|p'
    done | sort -u)
    for id in $("${ctr_[@]}" tasks list --quiet 2>/dev/null); do "${ctr_[@]}" tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true; done
    sleep 0.5
    for id in $("${ctr_[@]}" tasks list --quiet 2>/dev/null); do "${ctr_[@]}" tasks delete --force "$id" >/dev/null 2>&1 || true; done
    for id in $("${ctr_[@]}" containers list --quiet 2>/dev/null); do "${ctr_[@]}" containers delete "$id" >/dev/null 2>&1 || true; done
  fi
  stop_process "containerd-$n"
  # Shims outlive their containerd; each names its containerd's socket.
  for pid in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  local ns
  for ns in "${netns[@]}"; do
    ip netns delete "$(basename "$ns")" 2>/dev/null || { umount "$ns" 2>/dev/null; rm -f "$ns"; } || true
  done
  # Deepest first: container root filesystems, sandboxes' /dev/shm, pods' volumes.
  awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  local cg
  for cg in $(node_cgroup_dirs "$n"); do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  # The firewall and portmap plugins' rules for pods that were never torn down through CNI.
  local cidr; cidr=$(node_cidr "$n")
  local table rule
  for table in filter nat; do
    iptables_delete "$table" "-A CNI-[A-Z-]+ .*(${cidr%.*}\\.|modelship-$n)"
  done
  ip link delete "$(node_bridge "$n")" 2>/dev/null || true
}
