# The front door. `make up` and `make test` bootstrap everything they need first.
SHELL := /bin/bash
STACK ?= dev
ENV := source toolchain/env.sh &&

.PHONY: bootstrap up preview destroy test bench

bootstrap:
	toolchain/bootstrap.sh

up: bootstrap
	$(ENV) pulumi stack select --create $(STACK) && pulumi up --yes --stack $(STACK)

preview: bootstrap
	$(ENV) pulumi stack select --create $(STACK) && pulumi preview --stack $(STACK)

destroy: bootstrap
	$(ENV) pulumi destroy --yes --stack $(STACK)

test: bootstrap
	$(ENV) python -m pytest -ra tests

bench: bootstrap
	$(ENV) for b in bench/*.py; do python "$$b" || exit 1; done
