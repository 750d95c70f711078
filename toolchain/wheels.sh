#!/usr/bin/env bash
# wheels.sh REQUIREMENTS_FILE OUT_DIR
# Every wheel REQUIREMENTS_FILE needs, for the base image's platform (CPython 3.11, x86_64, glibc of Debian
# bookworm), prepared on the host and linked into OUT_DIR (a `docker build` context's wheels/): the build installs
# them with `pip install --no-index --find-links`, so it needs no network. Wheels come from PyPI as they are;
# a requirement published only as a source archive is built here with `pip wheel`, and only if pure Python.
# Cached in $MODELSHIP_CACHE/wheels/<hash of the requirements and the target>.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/env.sh"

[ $# -eq 2 ] || die "usage: $0 REQUIREMENTS_FILE OUT_DIR"
req=$(realpath "$1") || die "no requirements file $1"
out=$2
[ -f "$req" ] || die "no requirements file $1"

# The image's interpreter and C library (modelship/python-base:3.11 and python:3.11-slim: bookworm, glibc 2.36).
# pip takes a manylinux_2_Y wheel only for a platform named exactly, so every glibc up to the image's is listed.
python_version=3.11
glibc_minor=36
platforms=(manylinux2014_x86_64 manylinux2010_x86_64 manylinux1_x86_64)
for ((y = glibc_minor; y >= 5; y--)); do platforms+=("manylinux_2_${y}_x86_64"); done
target=(--python-version "$python_version" --implementation cp)
for p in "${platforms[@]}"; do target+=(--platform "$p"); done

key=$( { cat "$req"; echo "${target[*]}"; } | sha256sum | cut -c1-64)
cache=$MODELSHIP_CACHE/wheels/$key
mkdir -p "$MODELSHIP_CACHE/wheels"
exec 9> "$MODELSHIP_CACHE/wheels/.lock-$key"
flock -n 9 || { echo "waiting for another toolchain/wheels.sh on the same requirements" >&2; flock 9; }

pip() { python3 -m pip --disable-pip-version-check "$@"; }

download() {
  local start=$SECONDS
  work=$(mktemp -d "$MODELSHIP_CACHE/wheels/.tmp.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/wheels" "$work/built"
  local tries=0 missing
  until pip download --quiet --only-binary=:all: "${target[@]}" --find-links "$work/built" \
        -d "$work/wheels" -r "$req" 2> "$work/err"; do
    missing=$(sed -n 's/^ERROR: No matching distribution found for //p' "$work/err" | head -n 1)
    [ -n "$missing" ] && [ $((tries += 1)) -le 20 ] \
      || die "pip download for $req failed:
$(tail -n 15 "$work/err")"
    # No wheel for the image: a source archive can still serve if it builds to a pure-Python wheel.
    pip wheel --quiet --no-deps -w "$work/sdist" "$missing" 2> "$work/err" \
      || die "'$missing' has no wheel for CPython $python_version manylinux x86_64 and its source archive did not build:
$(tail -n 15 "$work/err")"
    local whl
    for whl in "$work"/sdist/*.whl; do
      case "$whl" in
        *-none-any.whl) mv "$whl" "$work/built/" ;;
        *) die "'$missing' has no wheel for CPython $python_version manylinux x86_64 on PyPI and builds only to $(basename "$whl") (not pure Python): pin a version that publishes manylinux wheels" ;;
      esac
    done
  done
  rm -rf "$cache"
  mv "$work/wheels" "$cache"
  echo "wheels for $1: downloaded in $((SECONDS - start))s" >&2
}

[ -d "$cache" ] || download "$1"
mkdir -p "$out"
find "$out" -maxdepth 1 -name '*.whl' -delete
# Hard links when the context is on the cache's file system: no copies of large wheels per build.
cp -l "$cache"/*.whl "$out"/ 2>/dev/null || cp "$cache"/*.whl "$out"/
echo "wheels for $1: $(find "$out" -maxdepth 1 -name '*.whl' | wc -l) in $out, $(du -shL "$cache" | cut -f1)" >&2
