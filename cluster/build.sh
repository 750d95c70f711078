#!/usr/bin/env bash
# Builds the cluster's binaries from the Go module proxy into $MODELSHIP_CACHE/cluster/bin/<name>-<version>/,
# once per version: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (from the wrapper module
# cluster/build/kubernetes), kwok and etcd. One build at a time under `nice`, since the machine is shared;
# each one's wall time, size and peak memory go to build-report.txt beside the binaries.
. "$(dirname "$0")/lib.sh"
exclusive build
command -v go >/dev/null || die "Go is not installed: the cluster's control plane is built from source with Go ≥ 1.26"

if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "/usr/bin/time is missing (it measures the builds): install it (on Debian/Ubuntu: apt-get install time)"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends time >/dev/null || die "apt-get install time failed"
fi

# build DIR NAME PACKAGE [LDFLAGS]: builds PACKAGE within the module at DIR to DEST/NAME unless it is there.
build() {
  local dest=$1 module=$2 name=$3 pkg=$4 ldflags=${5:-}
  [ -x "$dest/$name" ] && return 0
  mkdir -p "$dest"
  log "building $name ($pkg); a cold build takes minutes"
  local stats; stats=$(mktemp)
  if ! progress "building $name" bash -c 'cd "$1" && shift && exec "$@"' _ "$module" \
      nice -n 10 /usr/bin/time -v -o "$stats" go build -trimpath -ldflags "-s -w $ldflags" -o "$dest/.$name.tmp" "$pkg"; then
    rm -f "$dest/.$name.tmp" "$stats"
    die "building $name from $pkg failed (module $module): see the Go errors above"
  fi
  mv "$dest/.$name.tmp" "$dest/$name"
  local wall rss size
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$stats")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$stats")
  size=$(stat -c %s "$dest/$name")
  printf '%s wall=%s size_mib=%s peak_rss_mib=%s go=%s\n' "$name" "$wall" "$((size / 1048576))" \
    "$((rss / 1024))" "$(go env GOVERSION)" | tee -a "$dest/build-report.txt" >&2
  rm -f "$stats"
}

# What `kubectl version` and clients see; the release scripts stamp the same variables.
v=${KUBERNETES_VERSION#v}
stamp="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
stamp+=" -X k8s.io/component-base/version.gitMajor=${v%%.*} -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$v")"
stamp+=" -X k8s.io/component-base/version.gitTreeState=clean"
stamp+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
stamp+=" -X k8s.io/client-go/pkg/version.gitMajor=${v%%.*} -X k8s.io/client-go/pkg/version.gitMinor=$(cut -d. -f2 <<<"$v")"

wrapper=$CLUSTER_SRC/build/kubernetes
grep -qE "^\s*(require\s+)?k8s.io/kubernetes $KUBERNETES_VERSION( |$)" "$wrapper/go.mod" ||
  die "cluster/build/kubernetes/go.mod is not for $KUBERNETES_VERSION: run cluster/build/wrap-kubernetes.sh"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build "$KUBE_BIN" "$wrapper" "$c" "k8s.io/kubernetes/cmd/$c" "$stamp"
done
build "$KWOK_BIN" "$CLUSTER_SRC/build/kwok" kwok sigs.k8s.io/kwok/cmd/kwok
build "$ETCD_BIN" "$CLUSTER_SRC/build/etcd" etcd go.etcd.io/etcd/server/v3
