#!/usr/bin/env bash
# Brings up the local single-machine Kubernetes cluster and prints its admin kubeconfig path on stdout:
# etcd, kube-apiserver (RBAC on), kube-controller-manager and kube-scheduler on 127.0.0.1; two real worker
# nodes (node-1, node-2: containerd, kubelet, CNI bridge; cluster/nodes.sh), kube-proxy, and CoreDNS and
# metrics-server as pods; with MODELSHIP_KWOK=1 also a KWOK-simulated node (kwok-node-0, tainted) for
# scheduling at scale. Idempotent: builds binaries only when missing (cached per version), generates
# certificates only for a new cluster, starts only what is not running, and returns once the API, the nodes and
# the add-ons are ready. `cluster/down.sh` stops it all and deletes its state.
. "$(dirname "$0")/lib.sh"
. "$CLUSTER_SRC/nodes.sh"
exclusive lifecycle
t0=$SECONDS
command -v curl >/dev/null || die "curl is missing: install it (on Debian/Ubuntu: apt-get install curl)"
[ "$(id -u)" = 0 ] || die "the nodes need root (bridges, cgroups, mounts, iptables): run cluster/up.sh as root"
[ "$KWOK_ENABLED" = 1 ] || [ "$KWOK_ENABLED" = 0 ] || die "MODELSHIP_KWOK must be 0 or 1, not '$KWOK_ENABLED'"

"$CLUSTER_SRC/build.sh"
"$CLUSTER_SRC/pki.sh"
mkdir -p "$RUN" "$LOGS" "$STATE/etcd"
# Copies, so that a running cluster never reads from a clone that CI may delete.
install -m 644 "$CLUSTER_SRC/kwok-stages.yaml" "$STATE/kwok-stages.yaml"

# start NAME BINARY ARGS...: starts NAME in its own session, logging to $LOGS/NAME.log, unless it runs.
start() {
  local name=$1; shift
  running "$name" && return 0
  log "starting $name"
  # Without the lock's descriptor: a daemon holding it would keep every later up.sh and down.sh waiting.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null {lock_fd}>&- &
  local pid=$! tries=100
  echo "$pid" >"$RUN/$name.pid"
  # Until the fork execs, its command line is this script's, and running() would take the daemon for dead.
  while ((tries--)) && ! running "$name"; do sleep 0.05; done
}

# wait_until NAME TIMEOUT_S CMD...: polls CMD until it succeeds; on timeout or if NAME died, shows its log.
wait_until() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! running "$name"; then
      tail -n 30 "$LOGS/$name.log" >&2
      die "$name exited during start-up: its log is $LOGS/$name.log (last lines above)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$LOGS/$name.log" >&2
      die "$name not ready after ${timeout}s: its log is $LOGS/$name.log (last lines above)"
    fi
    sleep 0.2
  done
}

https_ok() { curl -sf --max-time 2 --cacert "$PKI/ca.crt" "$@"; }

start etcd "$ETCD_BIN/etcd" \
  --name modelship --data-dir "$STATE/etcd" \
  --listen-client-urls "https://$CLUSTER_ADDR:$ETCD_CLIENT_PORT" \
  --advertise-client-urls "https://$CLUSTER_ADDR:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://$CLUSTER_ADDR:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://$CLUSTER_ADDR:$ETCD_PEER_PORT" \
  --initial-cluster "modelship=http://$CLUSTER_ADDR:$ETCD_PEER_PORT" \
  --cert-file "$PKI/etcd.crt" --key-file "$PKI/etcd.key" \
  --trusted-ca-file "$PKI/ca.crt" --client-cert-auth \
  --snapshot-count 10000 --quota-backend-bytes 2147483648
wait_until etcd 30 https_ok --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" \
  "https://$CLUSTER_ADDR:$ETCD_CLIENT_PORT/health"

start kube-apiserver "$KUBE_BIN/kube-apiserver" \
  --bind-address "$CLUSTER_ADDR" --advertise-address "$CLUSTER_ADDR" --secure-port "$API_PORT" \
  --etcd-servers "https://$CLUSTER_ADDR:$ETCD_CLIENT_PORT" --etcd-cafile "$PKI/ca.crt" \
  --etcd-certfile "$PKI/apiserver-etcd-client.crt" --etcd-keyfile "$PKI/apiserver-etcd-client.key" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --profiling=false \
  --endpoint-reconciler-type none \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --enable-aggregator-routing=true
wait_until kube-apiserver 90 https_ok "https://$CLUSTER_ADDR:$API_PORT/readyz"

start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
  --bind-address "$CLUSTER_ADDR" --secure-port "$CONTROLLER_MANAGER_PORT" \
  --tls-cert-file "$PKI/controller-manager-serving.crt" --tls-private-key-file "$PKI/controller-manager-serving.key" \
  --kubeconfig "$PKI/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --leader-elect=false --profiling=false
start kube-scheduler "$KUBE_BIN/kube-scheduler" \
  --bind-address "$CLUSTER_ADDR" --secure-port "$SCHEDULER_PORT" \
  --tls-cert-file "$PKI/scheduler-serving.crt" --tls-private-key-file "$PKI/scheduler-serving.key" \
  --kubeconfig "$PKI/scheduler.kubeconfig" \
  --authentication-kubeconfig "$PKI/scheduler.kubeconfig" \
  --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
  --leader-elect=false --profiling=false
wait_until kube-controller-manager 60 https_ok "https://$CLUSTER_ADDR:$CONTROLLER_MANAGER_PORT/healthz"
wait_until kube-scheduler 60 https_ok "https://$CLUSTER_ADDR:$SCHEDULER_PORT/healthz"

kubectl apply --server-side --field-manager modelship-cluster -f "$CLUSTER_SRC/bootstrap.yaml" >/dev/null ||
  die "applying cluster/bootstrap.yaml (the components' RBAC) failed"
if [ "$KWOK_ENABLED" = 1 ]; then
  kubectl apply --server-side --field-manager modelship-cluster -f "$CLUSTER_SRC/kwok-node.yaml" >/dev/null ||
    die "applying cluster/kwok-node.yaml (the KWOK node) failed"
  start kwok "$KWOK_BIN/kwok" \
    --kubeconfig "$PKI/kwok.kubeconfig" --config "$STATE/kwok-stages.yaml" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 40 --node-ip "$CLUSTER_ADDR" --cidr 10.244.0.1/24 \
    --server-address "$CLUSTER_ADDR:$KWOK_PORT"
  wait_until kwok 60 kubectl wait --for=condition=Ready "node/$KWOK_NODE" --timeout=2s
fi

for n in "${NODES[@]}"; do
  node_prepare "$n"
  dir=$(node_dir "$n")
  start "containerd-$n" containerd --config "$dir/containerd-$n.toml" --log-level warn
  wait_until "containerd-$n" 30 ctr --address "$(node_socket "$n")" version
  node_import_images "$n"
  start "kubelet-$n" "$KUBE_BIN/kubelet" \
    --config "$dir/kubelet-$n.yaml" --kubeconfig "$PKI/$n.kubeconfig" --root-dir "$dir/kubelet" \
    --hostname-override "$n" --node-ip "$(node_ip "$n")" --node-labels "modelship.ai/node=real"
done
for n in "${NODES[@]}"; do
  wait_until "kubelet-$n" 60 kubectl get node "$n"
  # The pod CIDR its CNI configuration hands out, recorded on the Node as a CIDR allocator would.
  [ -n "$(kubectl get node "$n" -o jsonpath='{.spec.podCIDR}')" ] ||
    kubectl patch node "$n" --type merge -p "{\"spec\":{\"podCIDR\":\"$(node_cidr "$n")\",\"podCIDRs\":[\"$(node_cidr "$n")\"]}}" >/dev/null
done

# One kube-proxy for both nodes: they share this machine's network namespace, and so its iptables; two
# kube-proxies there would rewrite each other's chains. It runs as node-1 (which only matters for Services
# with a Local traffic policy). NodePorts answer on 127.0.0.1 only.
write_file "$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
hostnameOverride: ${NODES[0]}
mode: iptables
clusterCIDR: $CLUSTER_CIDR
detectLocalMode: ClusterCIDR
nodePortAddresses: [127.0.0.1/32]
iptables: {localhostNodePorts: true}
bindAddress: $CLUSTER_ADDR
healthzBindAddress: $CLUSTER_ADDR:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: $CLUSTER_ADDR:$KUBE_PROXY_METRICS_PORT
# Leave the machine's conntrack table size alone: it is shared, and this sandbox may not change it.
conntrack: {maxPerCore: 0}
EOF
start kube-proxy "$KUBE_BIN/kube-proxy" --config "$STATE/kube-proxy.yaml"
wait_until kube-proxy 30 curl -sf --max-time 2 "http://$CLUSTER_ADDR:$KUBE_PROXY_HEALTHZ_PORT/healthz"
for n in "${NODES[@]}"; do
  wait_until "kubelet-$n" 90 kubectl wait --for=condition=Ready "node/$n" --timeout=2s
done

# Pods need their namespace's default ServiceAccount, which the controller manager creates shortly after.
wait_until kube-controller-manager 30 kubectl get serviceaccount default --namespace default

# The add-ons run as pods on the nodes: CoreDNS, then metrics-server (whose API answers once it has scraped the
# kubelets once).
export COREDNS_IMAGE METRICS_SERVER_IMAGE API_PORT DNS_SERVICE_IP METRICS_SERVER_PORT
# shellcheck disable=SC2016  # the variables envsubst may replace, by name; the others ({$POD_IP}) stay
envsubst '${COREDNS_IMAGE} ${METRICS_SERVER_IMAGE} ${API_PORT} ${DNS_SERVICE_IP} ${METRICS_SERVER_PORT}' \
  <"$CLUSTER_SRC/addons.yaml" | kubectl apply --server-side --field-manager modelship-cluster -f - >/dev/null ||
  die "applying cluster/addons.yaml (CoreDNS, metrics-server) failed"
for d in coredns metrics-server; do
  kubectl rollout status "deployment/$d" --namespace kube-system --timeout=120s >/dev/null ||
    die "the $d add-on did not turn ready within 120s: see 'kubectl -n kube-system describe pods' and the kubelets' logs in $LOGS"
done
kubectl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=90s >/dev/null ||
  die "the metrics API (v1beta1.metrics.k8s.io) is not available: see 'kubectl -n kube-system logs deployment/metrics-server'"

# A stable path for people and tests, whatever the version: $MODELSHIP_CACHE/cluster/bin/kubectl.
ln -sfn "$KUBE_BIN/kubectl" "$CLUSTER_HOME/bin/kubectl"
log "cluster ready in $((SECONDS - t0))s: API https://$CLUSTER_ADDR:$API_PORT, nodes ${NODES[*]}$([ "$KWOK_ENABLED" = 0 ] || echo " and $KWOK_NODE (KWOK)")"
echo "$KUBECONFIG_ADMIN"
