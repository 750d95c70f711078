#!/usr/bin/env bash
# Brings a fresh machine (or a laptop) to everything `make up` and `make test` need. Idempotent and cached:
# a warm run only checks stamps. Each step prints its duration.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
total=$SECONDS
step "host packages" "$here/host-packages.sh"
step "python virtualenv" "$here/python.sh"
step "docker engine" "$here/docker.sh"
step "pulumi toolchain" "$here/pulumi.sh"
step "base images" "$here/images.sh"
step "policy pack virtualenv" "$here/../policy/setup.sh"
step "kubernetes control plane binaries" "$here/../cluster/build.sh"
printf 'bootstrap done in %ss\n' "$((SECONDS - total))" >&2
