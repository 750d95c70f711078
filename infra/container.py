"""The Docker target: one plain-Python container spec, declared through the docker SDK's own arguments.

`container_spec()` is the single description of the serving container. `create_kwargs()` turns it into
`containers.create` arguments: the inputs of the `Container` resource (infra/docker_engine.py, a dynamic
provider over the docker SDK) that `ContainerWorkload` declares, and, with `docker_run_kwargs()`, what tests
hand to `containers.run` directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi

from infra import docker_engine
from infra.config import WorkloadConfig

# Same probe as the Kubernetes readiness probe: the V2 protocol's readiness route.
READY_PATH = "/v2/health/ready"
NON_ROOT_USER = "10001:10001"
# What the serving container is called on its network (monitoring's Prometheus scrapes it by this name).
MODEL_ALIAS = "model"
_SUFFIXES = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(text: str) -> float:
    """A Kubernetes quantity ("512Mi", "500m", "1k", "1e3") as a number."""
    found = re.fullmatch(r"([+-]?[0-9.]+)(?:[eE]([+-]?[0-9]+)|([a-zA-Z]*))", text.strip())
    if not found or (found.group(3) or "") not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, exponent, suffix = found.groups()
    return float(number) * (10 ** int(exponent) if exponent else _SUFFIXES[suffix or ""])


def memory_bytes(text: str) -> int:
    """A Kubernetes memory quantity ("512Mi") in bytes."""
    return int(quantity(text))


def cpus(text: str) -> float:
    """A Kubernetes CPU quantity ("500m", "2") in CPUs."""
    return quantity(text)


@dataclass(frozen=True)
class Healthcheck:
    test: list[str]
    interval_s: int = 5
    timeout_s: int = 3
    retries: int = 3
    start_period_s: int = 20


@dataclass(frozen=True)
class ContainerSpec:
    """Values may be `pulumi.Input`s when declared through Pulumi, plain values for the docker SDK."""

    image: Any
    env: dict[str, Any]
    internal_port: int
    host_port: Optional[int]
    healthcheck: Healthcheck
    memory_bytes: int
    cpus: float
    labels: dict[str, str]
    user: str = NON_ROOT_USER
    read_only: bool = True
    # The only writable paths of a read-only root filesystem: scratch space, never the model.
    tmpfs: dict[str, str] = field(default_factory=lambda: {"/tmp": "rw,noexec,nosuid,size=64m"})
    cap_drop: tuple[str, ...] = ("ALL",)
    security_opt: tuple[str, ...] = ("no-new-privileges",)
    restart: str = "unless-stopped"


def container_spec(image: Any, workload: WorkloadConfig, labels: dict[str, str], auth_token: Any = None) -> ContainerSpec:
    port = workload.port
    env = {"PORT": str(port), "HOST": "0.0.0.0", "MODEL_DIR": "/model"}
    if auth_token is not None:
        env["AUTH_TOKEN"] = auth_token
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{READY_PATH}', timeout=2)"
    return ContainerSpec(
        image=image,
        env=env,
        internal_port=port,
        host_port=workload.host_port,
        healthcheck=Healthcheck(test=["CMD", "python", "-c", probe]),
        memory_bytes=memory_bytes(workload.memory),
        cpus=cpus(workload.cpu),
        labels=labels,
    )


def create_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """The spec as `containers.create` arguments (values may still be `pulumi.Input`s)."""
    hc = spec.healthcheck
    return {
        "image": spec.image,
        "environment": dict(spec.env),
        "ports": {f"{spec.internal_port}/tcp": ("127.0.0.1", spec.host_port)},
        "healthcheck": docker_engine.healthcheck(hc.test, hc.interval_s, hc.timeout_s, hc.retries, hc.start_period_s),
        "mem_limit": spec.memory_bytes,
        "nano_cpus": int(spec.cpus * 1_000_000_000),
        "labels": dict(spec.labels),
        "user": spec.user,
        "read_only": spec.read_only,
        "tmpfs": dict(spec.tmpfs),
        "cap_drop": list(spec.cap_drop),
        "security_opt": list(spec.security_opt),
        "restart_policy": {"Name": spec.restart},
    }


def docker_run_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """The spec as `docker.from_env().containers.run(**kwargs)` arguments (plain values only)."""
    return {**create_kwargs(spec), "detach": True}


@dataclass(frozen=True)
class ContainerWorkloadArgs:
    image_ref: pulumi.Input[str]
    workload: WorkloadConfig
    labels: dict[str, str]


class ContainerWorkload(pulumi.ComponentResource):
    """A network, the serving image pulled into the Engine, and the serving container; `endpoint` is the URL
    clients call."""

    endpoint: pulumi.Output[str]
    container_name: pulumi.Output[str]
    network_name: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerWorkloadArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:ContainerWorkload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        token = args.workload.auth_token
        secret_token = pulumi.Output.secret(token.get_secret_value()) if token else None
        network = docker_engine.Network(f"{name}-net", {"driver": "bridge"}, opts=child)
        # Present in the Engine (pulled from the registry by digest if not); removed again on destroy.
        pulled = docker_engine.Image(f"{name}-image", {"ref": args.image_ref, "keep_locally": False}, opts=child)
        spec = container_spec(pulled.ref, args.workload, args.labels, secret_token)

        if spec.host_port is not None:
            pulumi.log.warn(
                f"{name}: host port {spec.host_port} is fixed, so a new model replaces the container by "
                "stopping the old one first (a few seconds without service); unset workload.hostPort to "
                "start the new container beside the old one instead.",
                resource=self,
            )
        # `up` returns once the health check passes: the endpoint answers when the stack says it does. The
        # provider deletes the old container first exactly when the host port is fixed.
        self.container = docker_engine.Container(
            name,
            {**create_kwargs(spec), "networks": [{"name": network.name, "aliases": [MODEL_ALIAS]}], "ready_timeout_s": 120},
            opts=child,
        )
        # Numbers come back from the engine as floats.
        host_port = self.container.published.apply(lambda ports: str(int(ports[f"{spec.internal_port}/tcp"])))
        self.endpoint = pulumi.Output.concat("http://127.0.0.1:", host_port)
        self.container_name = self.container.name
        self.network_name = network.name
        self.register_outputs({"endpoint": self.endpoint, "container": self.container_name, "network": self.network_name})
