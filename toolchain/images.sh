#!/usr/bin/env bash
# The base images the program runs, under the local tags its configuration names (Pulumi.yaml, infra/config.py).
# Each comes from, in this order:
#   1. the public image (image.env PUBLIC), when MODELSHIP_PULL_BASE_IMAGES=1 (pulled) or already present (a laptop);
#   2. the local image of that tag, when its ai.modelship.recipe label equals its recipe's hash (warm run);
#   3. a build from its recipe, toolchain/images/NAME/: the shared Debian root filesystem (toolchain/rootfs.sh),
#      its packages, `docker import`, then `docker build --network none` of its Dockerfile.
# Writes $MODELSHIP_CACHE/images.env: NAME=TAG and NAME_SOURCE=recipe:HASH|public:IMAGE for each image (NAME is
# the recipe directory upper-cased, e.g. PYTHON_BASE). See docs/images.md.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/env.sh"

recipes=$MODELSHIP_ROOT/toolchain/images
cache=$MODELSHIP_CACHE/images
label=ai.modelship.recipe
names=(python-base registry prometheus alertmanager haproxy)

timeout 20 docker info >/dev/null 2>&1 || die "no Docker Engine answers 'docker info': run 'make bootstrap' (or toolchain/docker.sh)"
mkdir -p "$cache"
# One run at a time: CI and a developer's shell share the cache and the engine.
exec 9> "$cache/.lock"
flock -n 9 || { echo "waiting for another toolchain/images.sh to finish" >&2; flock 9; }

# hash_of PATH...: sha256 over the files' relative paths and bytes, so a rename counts as a change too.
hash_of() {
  local p
  for p in "$@"; do
    (cd "$(dirname "$p")" && find "$(basename "$p")" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  done | sha256sum | cut -c1-64
}

size_of() { docker image inspect -f '{{.Size}}' "$1" | numfmt --to=si --suffix=B; }

# The builder is part of every recipe: changing how a root filesystem is made rebuilds what it made.
rootfs_hash=$(hash_of "$recipes/rootfs" "$MODELSHIP_ROOT/toolchain/rootfs.sh")
rootfs_tar=$cache/rootfs-$rootfs_hash.tar

rootfs() {
  [ -f "$rootfs_tar" ] && return
  local start=$SECONDS
  echo "building the shared Debian root filesystem ($(basename "$rootfs_tar"))" >&2
  "$MODELSHIP_ROOT/toolchain/rootfs.sh" base "$rootfs_tar"
  find "$cache" -maxdepth 1 -name 'rootfs-*.tar' ! -name "$(basename "$rootfs_tar")" -delete
  echo "root filesystem: $((SECONDS - start))s, $(du -h "$rootfs_tar" | cut -f1)" >&2
}

# build NAME TAG HASH: the image from its recipe, labelled with HASH; the image it replaces is removed if unused.
build() {
  local name=$1 tag=$2 hash=$3 start=$SECONDS old
  rootfs
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  local imported=modelship/rootfs:$name-${hash:0:12}
  if ! nice -n 10 "$MODELSHIP_ROOT/toolchain/rootfs.sh" derive "$rootfs_tar" "$recipes/$name" \
      | docker import --message "modelship $name root filesystem" - "$imported" >/dev/null; then
    docker rmi "$imported" >/dev/null 2>&1 || true
    die "the root filesystem of $tag could not be made from $recipes/$name"
  fi
  local log
  log=$(docker build --network none --build-arg "ROOTFS=$imported" --label "$label=$hash" \
    --label "org.opencontainers.image.title=$tag" -t "$tag" "$recipes/$name" 2>&1) \
    || die "docker build of $tag from $recipes/$name failed:
$log"
  docker rmi "$imported" >/dev/null
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
  echo "$tag: built in $((SECONDS - start))s, $(size_of "$tag")" >&2
}

env_out=$(mktemp "$MODELSHIP_CACHE/images.env.XXXXXX")
trap 'rm -f "$env_out"' EXIT
echo "# Written by toolchain/images.sh: the local tag of each base image, and where it came from." > "$env_out"
for name in "${names[@]}"; do
  TAG="" PUBLIC=""
  # shellcheck source=/dev/null
  . "$recipes/$name/image.env"
  key=$(echo "$name" | tr 'a-z-' 'A-Z_')
  if [ "${MODELSHIP_PULL_BASE_IMAGES:-0}" = 1 ] || docker image inspect "$PUBLIC" >/dev/null 2>&1; then
    if ! docker image inspect "$PUBLIC" >/dev/null 2>&1; then
      docker pull -q "$PUBLIC" >/dev/null || die "docker pull $PUBLIC failed (MODELSHIP_PULL_BASE_IMAGES=1). Unset it to build $TAG locally from Debian instead"
    fi
    docker tag "$PUBLIC" "$TAG"
    echo "$TAG: the public $PUBLIC, $(size_of "$TAG")" >&2
    origin=public:$PUBLIC
  else
    hash=$(hash_of "$recipes/$name")
    hash=$(printf '%s %s' "$rootfs_hash" "$hash" | sha256sum | cut -c1-64)
    if [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$TAG" 2>/dev/null)" = "$hash" ]; then
      echo "$TAG: up to date, $(size_of "$TAG")" >&2
    else
      progress "building base image $TAG" build "$name" "$TAG" "$hash"
    fi
    origin=recipe:$hash
  fi
  printf '%s=%s\n%s_SOURCE=%s\n' "$key" "$TAG" "$key" "$origin" >> "$env_out"
done
mv "$env_out" "$MODELSHIP_CACHE/images.env"
trap - EXIT
