# The front door. Every target bootstraps what it needs first (cached: a warm bootstrap takes seconds).
SHELL := /bin/bash
STACK ?= dev
FROM ?= dev
TO ?= staging
ENV := source toolchain/env.sh &&
SELECT = $(ENV) pulumi stack select --create $(STACK) &&

.PHONY: bootstrap up preview destroy promote report stacks test bench cluster cluster-down

bootstrap:
	@toolchain/bootstrap.sh

up: bootstrap
	$(SELECT) pulumi up --yes --suppress-outputs --stack $(STACK) && python -m infra.stack_outputs --stack $(STACK)

preview: bootstrap
	$(SELECT) pulumi preview --suppress-outputs --stack $(STACK) --policy-pack policy

destroy: bootstrap
	$(SELECT) pulumi destroy --yes --stack $(STACK)

promote: bootstrap
	$(ENV) python -m infra.promote --from $(FROM) --to $(TO)

report: bootstrap
	@$(ENV) python -m infra.report --stack $(STACK)

stacks: bootstrap
	@$(ENV) python -m infra.stacks

test: bootstrap
	$(ENV) python -m pytest tests

bench: bootstrap
	$(ENV) for b in bench/*.py; do python "$$b" || exit 1; done

cluster: bootstrap
	cluster/up.sh

cluster-down:
	cluster/down.sh
