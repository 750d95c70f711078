#!/usr/bin/env bash
# Brings up the local single-machine Kubernetes cluster and prints its admin kubeconfig path on stdout:
# etcd, kube-apiserver (RBAC on), kube-controller-manager, kube-scheduler and a KWOK-simulated node, all on
# 127.0.0.1. Idempotent: builds binaries only when missing (cached per version), generates certificates
# only for a new cluster, starts only what is not running, and returns once the API is ready and the
# node is Ready. `cluster/down.sh` stops it all and deletes its state.
. "$(dirname "$0")/lib.sh"
exclusive lifecycle
t0=$SECONDS
command -v curl >/dev/null || die "curl is missing: install it (on Debian/Ubuntu: apt-get install curl)"

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
  --endpoint-reconciler-type none
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
  die "applying cluster/bootstrap.yaml (the KWOK node and its RBAC) failed"
start kwok "$KWOK_BIN/kwok" \
  --kubeconfig "$PKI/kwok.kubeconfig" --config "$STATE/kwok-stages.yaml" \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds 40 --node-ip "$CLUSTER_ADDR" --cidr 10.244.0.1/24 \
  --server-address "$CLUSTER_ADDR:$KWOK_PORT"
wait_until kwok 60 kubectl wait --for=condition=Ready "node/$KWOK_NODE" --timeout=2s
# Pods need their namespace's default ServiceAccount, which the controller manager creates shortly after.
wait_until kube-controller-manager 30 kubectl get serviceaccount default --namespace default

# A stable path for people and tests, whatever the version: $MODELSHIP_CACHE/cluster/bin/kubectl.
ln -sfn "$KUBE_BIN/kubectl" "$CLUSTER_HOME/bin/kubectl"
log "cluster ready in $((SECONDS - t0))s: API https://$CLUSTER_ADDR:$API_PORT, node $KWOK_NODE (KWOK)"
echo "$KUBECONFIG_ADMIN"
