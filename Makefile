# The front door. Every target bootstraps what it needs first (cached: a warm bootstrap takes seconds); the
# Kubernetes provider and the cluster's binaries only for what uses them (a kubernetes stack, make cluster,
# make test), so a first `make up` of the Docker dev stack never builds them.
SHELL := /bin/bash
STACK ?= dev
FROM ?= dev
TO ?= staging
ENV := source toolchain/env.sh &&
SELECT = $(ENV) pulumi stack select --create $(STACK) &&
# Before an update: what an interrupted one left (a stale lock, pending operations, orphaned containers) is
# resolved, each with a message (infra/recovery.py); a live lock is left to the update to refuse.
RECOVER = python -m infra.recovery --stack $(STACK)

.PHONY: bootstrap bootstrap-kubernetes bootstrap-stack up preview destroy promote report stacks test bench cluster cluster-down

bootstrap:
	@toolchain/bootstrap.sh

bootstrap-kubernetes:
	@toolchain/bootstrap.sh --kubernetes

# What STACK's target needs.
bootstrap-stack:
	@toolchain/bootstrap.sh --stack $(STACK)

up: bootstrap-stack
	$(SELECT) $(RECOVER) && python -m infra.migrate_docker --stack $(STACK) && pulumi up --yes --suppress-outputs --stack $(STACK) && python -m infra.stack_outputs --stack $(STACK)

preview: bootstrap-stack
	$(SELECT) $(RECOVER) --locks-only && pulumi preview --suppress-outputs --stack $(STACK) --policy-pack policy

destroy: bootstrap-stack
	$(SELECT) $(RECOVER) && pulumi destroy --yes --stack $(STACK)

promote: bootstrap
	$(ENV) python -m infra.promote --from $(FROM) --to $(TO)

report: bootstrap
	@$(ENV) python -m infra.report --stack $(STACK)

stacks: bootstrap
	@$(ENV) python -m infra.stacks

test: bootstrap-kubernetes
	$(ENV) python -m pytest tests

bench: bootstrap
	$(ENV) for b in bench/*.py; do python "$$b" || exit 1; done

cluster: bootstrap-kubernetes
	cluster/up.sh

cluster-down:
	cluster/down.sh
