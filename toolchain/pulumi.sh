#!/usr/bin/env bash
# The Pulumi engine, its Python language host and the provider plugins, built with Go from the Go module proxy
# (no download site is needed) into $MODELSHIP_CACHE/pulumi/$PULUMI_VERSION, then the plugins installed into the
# PULUMI_HOME that toolchain/env.sh sets. Idempotent: each binary has a stamp of its inputs, and a warm run only
# compares stamps. On a laptop with Pulumi from the official installer, it only checks the pinned plugins.
# What is built how, and what cannot be built here: docs/toolchain.md.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/env.sh"

wrappers=$MODELSHIP_ROOT/toolchain/pulumi
root=$MODELSHIP_CACHE/pulumi/$PULUMI_VERSION
bin=$root/bin
providers=$root/providers

# name version: the resource plugins the program's SDKs ask for. The Kubernetes provider (a 25-minute cold
# build) only with `--kubernetes`: the Docker target never loads it (the engine starts a provider plugin
# when a resource of its package is registered, and automatic plugin acquisition is off).
kubernetes=0
[[ ${1:-} == --kubernetes ]] && kubernetes=1
# docker-build builds the serving image, docker (pulumi-docker's plugin) runs the Docker target's networks, images
# and containers, and the local registry of every stack.
plugins=("docker-build $PULUMI_DOCKER_BUILD_VERSION" "docker $PULUMI_DOCKER_VERSION")
((kubernetes)) && plugins+=("kubernetes $PULUMI_KUBERNETES_VERSION")

installed_plugins() {
  pulumi plugin ls --json | python3 -c '
import json, sys
for p in json.load(sys.stdin) or []:
    if p.get("kind") == "resource":
        print(p["name"], p["version"])'
}

check_laptop_plugins() {
  local have missing=() name version
  have=$(installed_plugins)
  for entry in "${plugins[@]}"; do
    read -r name version <<<"$entry"
    grep -qx "$name $version" <<<"$have" || missing+=("pulumi plugin install resource $name $version")
  done
  if ((${#missing[@]})); then
    die "pulumi $(pulumi version) is on PATH, but these pinned provider plugins are missing; install them with:
  $(printf '%s\n  ' "${missing[@]}")(or set MODELSHIP_PULUMI_BIN=1 to build the whole toolchain here from the Go module proxy)"
  fi
  docker buildx version >/dev/null 2>&1 ||
    die "the docker CLI has no buildx plugin, which docker-build's exec mode runs: install Docker Desktop or docker-buildx-plugin"
  printf 'pulumi %s from PATH; plugins present: %s\n' "$(pulumi version)" "${plugins[*]}" >&2
}

# stamp_of DIR EXTRA...: a digest of everything a build reads from the repo, plus the Go version and flags.
stamp_of() {
  local dir=$1; shift
  { go version; sources_of "$dir" "$@"; } | sha256sum | cut -d' ' -f1
}

# sources_of DIR ARGS...: the ARGS and the digests of the wrapper module's Go sources (relative paths: a fresh
# clone elsewhere, as CI's, must find the same).
sources_of() {
  local dir=$1; shift
  printf '%s\n' "$@"
  (cd "$dir" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' -o -name '*-embed.json' \) \
    -print0 | sort -z | xargs -0 sha256sum)
}

# build OUT DIR PKG LDFLAGS [TAGS]: `go build` PKG in wrapper module DIR into OUT unless OUT's stamp is current.
build() {
  local out=$1 dir=$2 pkg=$3 ldflags=$4 tags=${5:-} stamp timing start
  # Tags only when set: an untagged build keeps the stamp it had before tags were known.
  stamp=$(stamp_of "$dir" "$pkg" "$ldflags" ${tags:+"$tags"})
  if [[ -x $out && -f $out.stamp && $(<"$out.stamp") == "$stamp" ]]; then
    return
  fi
  mkdir -p "$(dirname "$out")"
  timing=$(mktemp)
  start=$SECONDS
  printf 'building %s (%s) ...\n' "$(basename "$out")" "$pkg" >&2
  if ! progress "building $(basename "$out")" bash -c 'cd "$1" && shift && exec "$@"' _ "$dir" \
        nice -n 10 /usr/bin/time -v -o "$timing" go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg"; then
    rm -f "$timing" "$out.tmp"
    die "building $pkg in $dir failed (see the go output above)"
  fi
  mv "$out.tmp" "$out"
  printf '%s\n' "$stamp" >"$out.stamp"
  printf 'built %s in %ss: %s MiB, peak memory %s MiB\n' "$(basename "$out")" "$((SECONDS - start))" \
    "$(($(stat -c %s "$out") / 1048576))" \
    "$(($(awk -F': ' '/Maximum resident/ {print $2}' "$timing") / 1024))" >&2
  rm -f "$timing"
}

# The executor and the dynamic-provider shim are scripts inside the sdk/v3 module; the module cache drops their
# run bit, and the language host insists on finding the executor next to itself.
install_python_scripts() {
  local sdk
  # `go list -m` names a module's directory only once it is in the module cache: download it first (a no-op when
  # it is there, which is why only a machine with a cold cache ever saw this fail).
  sdk=$(cd "$wrappers/langhost" && go mod download github.com/pulumi/pulumi/sdk/v3 &&
    go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
  [[ -n $sdk ]] || die "could not locate the github.com/pulumi/pulumi/sdk/v3 module (go mod download failed?)"
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$bin/pulumi-resource-pulumi-python"
}

# The Kubernetes provider's main embeds a versioned copy of the module's schema and Terraform mapping, which its
# repository generates and the module does not carry; same transformation as its generate.go (set the version,
# compact the JSON).
generate_kubernetes_embeds() {
  local mod
  mod=$(cd "$wrappers/kubernetes" && go mod download github.com/pulumi/pulumi-kubernetes/provider/v4 &&
    go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  [[ -n $mod ]] || die "could not locate the github.com/pulumi/pulumi-kubernetes/provider/v4 module"
  python3 - "$mod/cmd/pulumi-resource-kubernetes" "$wrappers/kubernetes" "$PULUMI_KUBERNETES_VERSION" <<'EOF'
import json, pathlib, sys
src, dst, version = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
schema = json.loads((src / "schema.json").read_text())
schema["version"] = version
outputs = {
    "schema-embed.json": json.dumps(schema, separators=(",", ":")),
    "terraform-mapping-embed.json": json.dumps(json.loads((src / "terraform-mapping.json").read_text()),
                                               separators=(",", ":")),
}
for name, text in outputs.items():
    path = dst / name
    if not path.exists() or path.read_text() != text:  # unchanged files keep their stamp
        path.write_text(text)
EOF
}

# docker-build's own BuildKit client only drives "docker-container", "remote" or "kubernetes" builders, which
# cannot see the Engine's local images and would pull a BuildKit image. Its `exec` mode instead runs the
# docker-buildx CLI plugin, whose default builder is the Docker Engine's built-in BuildKit: local base images,
# no registry. Docker Desktop ships that plugin; Debian's docker.io does not, so it is built (same buildx version
# as the provider's) and linked where the Docker CLI looks for plugins.
install_buildx() {
  build "$root/docker-cli-plugins/docker-buildx" "$wrappers/docker-build" github.com/docker/buildx/cmd/buildx \
    "-X github.com/docker/buildx/version.Version=$(cd "$wrappers/docker-build" && go list -m -f '{{.Version}}' github.com/docker/buildx)"
  if ! docker buildx version >/dev/null 2>&1; then
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sfn "$root/docker-cli-plugins/docker-buildx" "$HOME/.docker/cli-plugins/docker-buildx"
  fi
  docker buildx version >/dev/null || die "the docker CLI does not load the docker-buildx plugin from ~/.docker/cli-plugins"
}

# pulumi-docker's provider module is not served, the Terraform provider it bridges is: its code lives in
# internal/provider, which only packages of its own module may import, so (as pulumi-docker's patch does) a copy of
# the module gets a one-function `shim` package and the wrapper module replaces the module with that copy.
prepare_docker_upstream() {
  local dir=$wrappers/docker/upstream src
  if [[ -f $dir/.module && $(<"$dir/.module") == "$PULUMI_DOCKER_UPSTREAM" ]]; then
    return
  fi
  # Outside any module: the wrapper's go.mod names the copy that does not exist yet.
  src=$(cd / && go mod download -json "$PULUMI_DOCKER_UPSTREAM" |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("Dir", ""))')
  [[ -n $src ]] || die "could not download $PULUMI_DOCKER_UPSTREAM from the Go module proxy"
  rm -rf "$dir.tmp"
  cp -r "$src" "$dir.tmp"
  chmod -R u+w "$dir.tmp"  # the module cache is read-only
  mkdir -p "$dir.tmp/shim"
  cat >"$dir.tmp/shim/shim.go" <<'EOF'
// Package shim exposes the provider in internal/provider to the modelship wrapper module (toolchain/pulumi.sh).
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

func NewProvider(version string) *schema.Provider { return provider.New(version)() }
EOF
  printf '%s\n' "$PULUMI_DOCKER_UPSTREAM" >"$dir.tmp/.module"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

# The plugin serves the schema that the bridge's tfgen derives from the same module, as pulumi-docker's build does.
# As in pulumi-docker's repository, the schema is committed (schema.json): the tfgen command is a build about as
# long as the plugin's own (it adds the code generators of every language), which a first `make up` would
# otherwise pay for an output that changes only with the pins. schema.inputs records the sources and flags it was
# generated from; when they differ (a pin moved), tfgen is built and the schema regenerated: commit both files
# then. The schema stays out of the plugin's stamp: it is a function of the sources and flags, which are in it.
# no_compose leaves out the Terraform provider's docker_compose, part of its plugin-framework half, which
# pulumi-docker (and this plugin) does not serve.
build_docker() {
  local dir=$wrappers/docker tfgen=$root/tools/pulumi-tfgen-docker out inputs
  local version_flag="-X modelship.local/toolchain/pulumi/docker/provider.Version=$PULUMI_DOCKER_VERSION"
  prepare_docker_upstream
  inputs=$(sources_of "$dir" "$version_flag" no_compose | sha256sum | cut -d' ' -f1)
  if [[ ! -s $dir/schema.json || $(cat "$dir/schema.inputs" 2>/dev/null) != "$inputs" ]]; then
    build "$tfgen" "$dir" ./cmd/pulumi-tfgen-docker "$version_flag" no_compose
    out=$(mktemp -d)
    printf 'generating the docker provider schema (its sources or pins changed: commit toolchain/pulumi/docker/schema.*) ...\n' >&2
    # PULUMI_CONVERT=0: the Terraform examples in the docs stay out of the descriptions (converting them takes
    # the terraform converter plugin, which nothing here serves).
    # It warns about every example it leaves out: its output is shown only when it fails.
    (cd "$dir" && PULUMI_CONVERT=0 "$tfgen" schema --out "$out" >"$out/log" 2>&1) ||
      { cat "$out/log" >&2; die "$tfgen schema failed (its output is above)"; }
    python3 - "$out/schema.json" "$dir/schema.json" "$PULUMI_DOCKER_VERSION" <<'EOF'
import json, pathlib, sys
schema = json.loads(pathlib.Path(sys.argv[1]).read_text())
schema["version"] = sys.argv[3]
pathlib.Path(sys.argv[2]).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
EOF
    printf '%s\n' "$inputs" >"$dir/schema.inputs"
    rm -rf "$out"
  fi
  build "$providers/pulumi-resource-docker" "$dir" . "$version_flag" no_compose
}

install_plugin() {
  local name=$1 version=$2 binary=$3 dir
  dir=$PULUMI_HOME/plugins/resource-$name-v$version
  if [[ -f $dir/pulumi-resource-$name ]] && cmp -s "$binary" "$dir/pulumi-resource-$name"; then
    return
  fi
  pulumi plugin rm resource "$name" "$version" --yes >/dev/null 2>&1 || true
  pulumi plugin install resource "$name" "$version" --file "$binary" >&2
}

build_all() {
  command -v go >/dev/null || die "go is not installed; toolchain/host-packages.sh or the machine image provides it"
  local sdk_version=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
  build "$bin/pulumi" "$wrappers/cli" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "-X $sdk_version=v$PULUMI_VERSION"
  build "$bin/pulumi-language-python" "$wrappers/langhost" . "-X $sdk_version=v$PULUMI_VERSION"
  install_python_scripts
  build "$providers/pulumi-resource-docker-build" "$wrappers/docker-build" \
    github.com/pulumi/pulumi-docker-build/provider/cmd/pulumi-resource-docker-build \
    "-X github.com/pulumi/pulumi-docker-build/provider.Version=$PULUMI_DOCKER_BUILD_VERSION"
  install_buildx
  build_docker
  if ((kubernetes)); then
    generate_kubernetes_embeds
    build "$providers/pulumi-resource-kubernetes" "$wrappers/kubernetes" . \
      "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION"
  fi

  mkdir -p "$PULUMI_HOME"
  local name version
  for entry in "${plugins[@]}"; do
    read -r name version <<<"$entry"
    install_plugin "$name" "$version" "$providers/pulumi-resource-$name"
  done
  printf 'pulumi %s in %s; plugins: %s\n' "$(pulumi version)" "$bin" "$(installed_plugins | paste -sd, -)" >&2
}

if [[ -z ${MODELSHIP_PULUMI_BIN:-} ]]; then
  check_laptop_plugins
else
  build_all
fi
