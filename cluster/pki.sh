#!/usr/bin/env bash
# Writes the cluster's certificates, service-account key pair and kubeconfigs under $STATE/pki, once per
# cluster (down.sh removes them): a CA, the API server's serving certificate, one client certificate per
# component (each its own RBAC identity), and the admin kubeconfig at $MODELSHIP_CACHE/cluster/kubeconfig.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || die "openssl is missing: install it (on Debian/Ubuntu: apt-get install openssl)"
if [ -f "$PKI/complete" ]; then
  # A cluster started by an older up.sh lacks the nodes' certificates: its state cannot be extended in place.
  for n in "${NODES[@]}"; do
    [ -f "$PKI/$n.kubeconfig" ] || die "$STATE was made by an older cluster/up.sh (no certificate for $n): run cluster/down.sh, then cluster/up.sh"
  done
  exit 0
fi
rm -rf "$PKI"; mkdir -p "$PKI"; chmod 700 "$PKI"
cd "$PKI"
days=3650

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub

key ca
openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=modelship-local-ca" -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# sign NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
sign() {
  local name=$1 subject=$2 usage=$3 sans=${4:-} ext
  key "$name"
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -z "$sans" ] || echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -new -key "$name.key" -subj "$subject" 2>/dev/null |
    openssl x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$ext"
}

sign etcd "/CN=etcd" serverAuth,clientAuth "IP:$CLUSTER_ADDR,DNS:localhost"
sign apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth
sign apiserver "/CN=kube-apiserver" serverAuth \
  "IP:$CLUSTER_ADDR,IP:$SERVICE_API_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
for c in controller-manager scheduler; do
  sign "$c-serving" "/CN=kube-$c" serverAuth "IP:$CLUSTER_ADDR,DNS:localhost"
done
# Each component authenticates as the user its built-in RBAC roles are bound to.
sign admin "/O=system:masters/CN=kubernetes-admin" clientAuth
sign controller-manager "/CN=system:kube-controller-manager" clientAuth
sign scheduler "/CN=system:kube-scheduler" clientAuth
sign kwok "/CN=modelship:kwok-controller" clientAuth
sign kube-proxy "/CN=system:kube-proxy" clientAuth
# The API server's identity towards the kubelets (logs, exec, port-forward, metrics), bound in bootstrap.yaml.
sign apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
# Each node: a client certificate in the Node authorizer's form, and the kubelet's serving certificate for its
# node IP, signed by the CA that the API server and metrics-server verify kubelets with.
for n in "${NODES[@]}"; do
  sign "$n" "/O=system:nodes/CN=system:node:$n" clientAuth
  sign "$n-serving" "/CN=$n" serverAuth "IP:$(node_ip "$n"),DNS:$n"
done

# The aggregation layer (metrics.k8s.io): a CA of its own, so that no other client certificate can pose as
# the API server's front proxy to metrics-server.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out front-proxy-ca.key 2>/dev/null
openssl req -x509 -new -key front-proxy-ca.key -days "$days" -subj "/CN=modelship-front-proxy-ca" -out front-proxy-ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
key front-proxy-client
openssl req -new -key front-proxy-client.key -subj "/CN=front-proxy-client" 2>/dev/null |
  openssl x509 -req -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial -days "$days" \
    -extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n') \
    -out front-proxy-client.crt 2>/dev/null

# kubeconfig NAME: a kubeconfig for the client certificate NAME against the API server.
kubeconfig() {
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: modelship-local
  cluster:
    server: https://$CLUSTER_ADDR:$API_PORT
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$1.crt")
    client-key-data: $(base64 -w0 "$1.key")
contexts:
- name: modelship-local
  context:
    cluster: modelship-local
    user: $1
current-context: modelship-local
EOF
}
for c in controller-manager scheduler kwok kube-proxy admin "${NODES[@]}"; do
  kubeconfig "$c" >"$c.kubeconfig"
done
chmod 600 ./*.key ./*.kubeconfig
install -m 600 admin.kubeconfig "$KUBECONFIG_ADMIN"
touch complete
