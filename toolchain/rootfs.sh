#!/usr/bin/env bash
# Debian root filesystems for the local base images, made on the host so that no `docker build` needs the network.
#   rootfs.sh base OUT_TAR            debootstrap the shared root filesystem (toolchain/images/rootfs/) into OUT_TAR
#   rootfs.sh derive BASE_TAR RECIPE  BASE_TAR + the recipe's PACKAGES (apt-get in a chroot) + its chroot.sh, as a
#                                     tar stream on stdout, ready for `docker import -`
# Packages come from the Debian mirror this machine's apt already uses (or MODELSHIP_DEBIAN_MIRROR); downloaded
# .debs are kept in $MODELSHIP_CACHE/images/debs, so a rebuild after a recipe change downloads only what is new.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/env.sh"

recipes=$MODELSHIP_ROOT/toolchain/images
debs=$MODELSHIP_CACHE/images/debs
# shellcheck source=images/rootfs/rootfs.env
. "$recipes/rootfs/rootfs.env"

[ "$(id -u)" = 0 ] || die "building base images needs root (debootstrap, chroot). Run as root, or set MODELSHIP_PULL_BASE_IMAGES=1 to pull the public images instead (see docs/images.md)"

# apt's own view of sources.list(.d): "URI SUITE" for each Debian suite this machine fetches package lists from.
apt_repos() {
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(IDENTIFIER)' 2>/dev/null \
    | awk -v s="$SUITE" '$3 == "Packages" && ($2 == s || $2 == s "-updates" || $2 == s "-security") {print $1, $2}' | sort -u
}

mirror() {
  if [ -n "${MODELSHIP_DEBIAN_MIRROR:-}" ]; then echo "$MODELSHIP_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(apt_repos | awk -v s="$SUITE" '$2 == s {print $1; exit}')
  [ -n "$uri" ] || die "apt on this machine has no '$SUITE' repository (looked at 'apt-get indextargets', i.e. /etc/apt/sources.list and sources.list.d after 'apt-get update'). Set MODELSHIP_DEBIAN_MIRROR to a Debian mirror URL, or MODELSHIP_PULL_BASE_IMAGES=1 (docs/images.md)"
  echo "$uri"
}

# in_chroot ROOT CMD...: CMD inside ROOT with /proc, /dev, the host's DNS and the shared .deb cache mounted in a
# private mount namespace, so every mount disappears with the command, whatever way it ends.
in_chroot() {
  local root=$1; shift
  touch "$root/etc/resolv.conf"
  unshare --mount --propagation private -- sh -ec '
    root=$1 debs=$2; shift 2
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
    mount --bind "$debs" "$root/var/cache/apt/archives"
    exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"
  ' sh "$root" "$debs" "$@"
}

# Makes ROOT ready for apt-get: the suites apt uses here, its date checks, no service starts.
apt_ready() {
  local root=$1 uri suite
  : > "$root/etc/apt/sources.list"
  if [ -n "${MODELSHIP_DEBIAN_MIRROR:-}" ]; then
    echo "deb $MODELSHIP_DEBIAN_MIRROR $SUITE main" > "$root/etc/apt/sources.list"
  else
    while read -r uri suite; do echo "deb $uri $suite main" >> "$root/etc/apt/sources.list"; done < <(apt_repos)
  fi
  # A snapshot mirror has expired Release files: take over the host's choice on checking their dates.
  local valid date
  valid=$(apt-config dump Acquire::Check-Valid-Until | awk '{print $2}' | tr -d '";')
  date=$(apt-config dump Acquire::Check-Date | awk '{print $2}' | tr -d '";')
  { [ -n "$valid" ] && echo "Acquire::Check-Valid-Until \"$valid\";"
    [ -n "$date" ] && echo "Acquire::Check-Date \"$date\";"; } > "$root/etc/apt/apt.conf.d/99modelship-build" || true
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
}

# Leaves ROOT as an image wants it: no build-time apt settings, package lists, caches, logs or host identity.
finish() {
  local root=$1
  rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/apt/apt.conf.d/99modelship-build"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/var/cache/apt/archives/*.deb "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.cache
  find "$root/var/log" -type f -delete
  # What the dpkg excludes keep out of later installs, removed from what debootstrap already installed.
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  rm -rf "$root"/usr/share/{man,groff,info,lintian,linda,locale}/*
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  # The engine provides these at run time; the build host's must not leak into the image.
  : > "$root/etc/resolv.conf"
  : > "$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
  rm -f "$root/etc/machine-id"
}

# logged WHAT CMD...: CMD's output goes to a log that is shown only when it fails.
logged() {
  local what=$1; shift
  "$@" > "$work/log" 2>&1 || die "$what failed. Last lines of its output:
$(tail -n 25 "$work/log")"
}

workdir() {
  mkdir -p "$MODELSHIP_CACHE/images/tmp" "$debs"
  work=$(mktemp -d "$MODELSHIP_CACHE/images/tmp/rootfs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
}

base() {
  local out=$1
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap (make bootstrap does)"
  workdir
  local root=$work/root uri
  uri=$(mirror)
  local start=$SECONDS
  logged "debootstrap $SUITE from $uri" \
    debootstrap --variant="$VARIANT" --components=main --cache-dir="$debs" "$SUITE" "$root" "$uri"
  echo "debootstrap $VARIANT $SUITE: $((SECONDS - start))s" >&2
  cp "$recipes/rootfs/dpkg-excludes" "$root/etc/dpkg/dpkg.cfg.d/modelship-slim"
  apt_ready "$root"
  logged "the $SUITE updates (apt-get dist-upgrade)" in_chroot "$root" sh -ec 'apt-get update -q; apt-get dist-upgrade -y -q'
  finish "$root"
  tar --numeric-owner -C "$root" -cf "$out.tmp" . && mv "$out.tmp" "$out"
}

derive() {
  local base_tar=$1 recipe=$2
  local PACKAGES=""
  # shellcheck source=/dev/null
  . "$recipe/image.env"
  workdir
  local root=$work/root
  mkdir -p "$root"
  tar --numeric-owner -C "$root" -xpf "$base_tar"
  apt_ready "$root"
  # shellcheck disable=SC2086 # PACKAGES is a word list
  logged "apt-get install $PACKAGES (recipe $recipe)" \
    in_chroot "$root" sh -ec "apt-get update -q; apt-get install -y -q --no-install-recommends $PACKAGES"
  if [ -f "$recipe/chroot.sh" ]; then
    logged "$recipe/chroot.sh" in_chroot "$root" /bin/sh -e < "$recipe/chroot.sh"
  fi
  finish "$root"
  tar --numeric-owner -C "$root" -cf - .
}

case "${1:-}" in
  base) [ $# -eq 2 ] || die "usage: $0 base OUT_TAR"; base "$2" ;;
  derive) [ $# -eq 3 ] || die "usage: $0 derive BASE_TAR RECIPE_DIR"; derive "$2" "$3" ;;
  *) die "usage: $0 base OUT_TAR | derive BASE_TAR RECIPE_DIR" ;;
esac
