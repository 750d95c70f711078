#!/usr/bin/env bash
# Brings a fresh machine (or a laptop) to what the chosen target needs. Idempotent and cached: a warm run only
# checks stamps. Each step prints its duration, and each long build its progress.
#   toolchain/bootstrap.sh                 the Docker target: `make up` of a docker stack, preview, promote
#   toolchain/bootstrap.sh --stack NAME    what stack NAME's target needs (Pulumi.NAME.yaml `modelship:target`)
#   toolchain/bootstrap.sh --kubernetes    also the Kubernetes provider plugin and the cluster's binaries
#                                          (`make cluster`, kubernetes stacks, `make test`)
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
total=$SECONDS
case ${1:-} in
  "") kubernetes=0 ;;
  --kubernetes) kubernetes=1 ;;
  --stack) [[ -n ${2:-} ]] || die "--stack needs a stack name"; kubernetes=stack ;;
  *) die "unknown argument '$1': toolchain/bootstrap.sh [--stack NAME | --kubernetes]" ;;
esac
step "host packages" "$here/host-packages.sh"
step "docker engine" "$here/docker.sh"
virtualenvs() { "$here/python.sh" && "$here/../policy/setup.sh"; }
beside "python virtualenvs" virtualenvs
beside "base images" "$here/images.sh"
# What every target needs (the Docker target's plugins) builds while the two steps above download and unpack.
step "pulumi toolchain" "$here/pulumi.sh"
join
if [[ $kubernetes == stack ]]; then
  target=$(cd "$here/.." && venv/bin/python -m infra.stacks --target "$2") || die "could not read the target of stack '$2'"
  kubernetes=$([[ $target == kubernetes ]] && echo 1 || echo 0)
fi
if ((kubernetes)); then
  step "pulumi toolchain: the kubernetes provider" "$here/pulumi.sh" --kubernetes
  step "cluster binaries and node images" "$here/../cluster/build.sh"
else
  echo "(the Kubernetes provider and the cluster's binaries are built when needed: make cluster, a kubernetes stack, make test)" >&2
fi
printf 'bootstrap done in %ss\n' "$((SECONDS - total))" >&2
