"""Where images live: a registry container on this machine (dev) or an external registry (other stacks)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_docker as docker

from infra import docker_engine
from infra.config import RegistryConfig

REGISTRY_PORT = 5000


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
            child = pulumi.ResourceOptions(parent=self)
            # The image is local (built by toolchain/images.sh offline): nothing is pulled. Its storage is the
            # image's anonymous volume, removed with the container.
            image = docker_engine.local_image(f"{name}-image", cfg.image, opts=child)
            self.container = docker_engine.container(
                name,
                image=image.image_id,
                ports=[docker.ContainerPortArgs(internal=REGISTRY_PORT, external=cfg.port, ip="127.0.0.1")],
                # The image has bash and no HTTP client: healthy once the port accepts connections.
                health=docker_engine.healthcheck(["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{REGISTRY_PORT}"]),
                opts=child,
            )
            # Known once the registry answers, so pushes wait for it.
            self.server = self.container.name.apply(lambda _: f"localhost:{cfg.port}")
            self.username = None
            self.password = None
        else:
            self.server = pulumi.Output.from_input(cfg.server)
            self.username = pulumi.Output.from_input(cfg.username)
            self.password = pulumi.Output.secret(cfg.password.get_secret_value())
        self.register_outputs({"server": self.server})
