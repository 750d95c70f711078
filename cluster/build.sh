#!/usr/bin/env bash
# Builds the cluster's binaries from the Go module proxy into $MODELSHIP_CACHE/cluster/bin/<name>-<version>/,
# once per version: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy (from the
# wrapper module cluster/build/kubernetes), kwok, etcd, CoreDNS, metrics-server and the pod sandbox's pause. One
# build at a time under `nice`, since the machine is shared; each one's wall time, size and peak memory go to
# build-report.txt beside the binaries. The images the nodes run (pause, CoreDNS, metrics-server) are built FROM
# scratch with the Docker engine and saved to $MODELSHIP_CACHE/cluster/images/ for up.sh to import. The nodes'
# runtime (containerd, runc) and CNI plugins are Debian's packages, installed at the versions.env pins.
. "$(dirname "$0")/lib.sh"
exclusive build
command -v go >/dev/null || die "Go is not installed: the cluster's control plane is built from source with Go ≥ 1.26"

if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "/usr/bin/time is missing (it measures the builds): install it (on Debian/Ubuntu: apt-get install time)"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends time >/dev/null || die "apt-get install time failed"
fi

# Debian packages at their pinned versions (a different installed version is replaced by the pinned one).
debs=()
# busybox-static is the whole of the tests' web image (tests/cluster/kube.py).
for pin in containerd=$CONTAINERD_DEB runc=$RUNC_DEB containernetworking-plugins=$CNI_PLUGINS_DEB busybox-static=$BUSYBOX_DEB; do
  [ "$(dpkg-query -W -f '${Version}' "${pin%%=*}" 2>/dev/null || true)" = "${pin#*=}" ] || debs+=("$pin")
done
if [ ${#debs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "the nodes need these Debian packages: apt-get install ${debs[*]}"
  fi
  log "installing ${debs[*]}"
  # As toolchain/lib.sh's apt_install: the packages' own services must not start (up.sh runs private ones).
  [ -x /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; }
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${debs[@]}" >/dev/null ||
    die "apt-get install ${debs[*]} failed"
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
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
  build "$KUBE_BIN" "$wrapper" "$c" "k8s.io/kubernetes/cmd/$c" "$stamp"
done
build "$KWOK_BIN" "$CLUSTER_SRC/build/kwok" kwok sigs.k8s.io/kwok/cmd/kwok
build "$ETCD_BIN" "$CLUSTER_SRC/build/etcd" etcd go.etcd.io/etcd/server/v3
# Static, for images that hold nothing but the binary.
CGO_ENABLED=0 build "$COREDNS_BIN" "$CLUSTER_SRC/build/coredns" coredns modelship.local/cluster/coredns
CGO_ENABLED=0 build "$METRICS_SERVER_BIN" "$CLUSTER_SRC/build/metrics-server" metrics-server \
  sigs.k8s.io/metrics-server/cmd/metrics-server
CGO_ENABLED=0 build "$PAUSE_BIN" "$CLUSTER_SRC/build/pause" pause modelship.local/cluster/pause

# image TAG BINARY: an image FROM scratch holding BINARY as its entrypoint, saved to $IMAGES, once per tag.
image() {
  local tag=$1 binary=$2 name; name=$(basename "$binary")
  local archive; archive=$(image_archive "$tag")
  [ -f "$archive" ] && return 0
  timeout 20 docker info >/dev/null 2>&1 || die "no Docker Engine answers: it builds the nodes' images (run toolchain/docker.sh)"
  mkdir -p "$IMAGES"
  local context; context=$(mktemp -d)
  cp "$binary" "$context/$name"
  printf 'FROM scratch\nCOPY %s /%s\nENTRYPOINT ["/%s"]\n' "$name" "$name" "$name" >"$context/Dockerfile"
  docker build -q --network none --label org.opencontainers.image.title="$tag" -t "$tag" "$context" >/dev/null ||
    die "docker build of $tag failed"
  rm -rf "$context"
  docker save -o "$archive.tmp" "$tag" && mv "$archive.tmp" "$archive" || die "docker save $tag failed"
  # The archive is the cache; the engine's copy would only be a leftover.
  docker rmi "$tag" >/dev/null
  log "image $tag saved to $archive"
}
image "$PAUSE_IMAGE" "$PAUSE_BIN/pause"
image "$COREDNS_IMAGE" "$COREDNS_BIN/coredns"
image "$METRICS_SERVER_IMAGE" "$METRICS_SERVER_BIN/metrics-server"
