"""Where images live: a registry container on this machine (dev) or an external registry (other stacks)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from infra.config import RegistryConfig


@dataclass(frozen=True)
class RegistryArgs:
    registry: RegistryConfig


class Registry(pulumi.ComponentResource):
    """`server` is the host[:port] images are pushed to; `username`/`password` are None for the local one."""

    server: pulumi.Output[str]
    username: Optional[pulumi.Output[str]]
    password: Optional[pulumi.Output[str]]

    def __init__(self, name: str, args: RegistryArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:Registry", name, None, opts)
        cfg = args.registry
        self.container: Optional[docker.Container] = None
        if cfg.kind == "local":
            # The image is local (built by toolchain/images.sh offline): nothing is pulled.
            self.container = docker.Container(
                name,
                image=cfg.image,
                ports=[docker.ContainerPortArgs(internal=5000, external=cfg.port, ip="127.0.0.1")],
                restart="unless-stopped",
                must_run=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.server = self.container.id.apply(lambda _: f"localhost:{cfg.port}")
            self.username = None
            self.password = None
        else:
            self.server = pulumi.Output.from_input(cfg.server)
            self.username = pulumi.Output.from_input(cfg.username)
            self.password = pulumi.Output.secret(cfg.password.get_secret_value())
        self.register_outputs({"server": self.server})
