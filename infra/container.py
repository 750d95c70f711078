"""The Docker target: one plain-Python container spec, declared through pulumi-docker.

`container_spec()` is the single description of the serving container. `ContainerWorkload` feeds it to
pulumi-docker; `docker_run_kwargs()` feeds the same spec to the docker SDK, which is how the tests check
it when the pulumi-docker plugin is not available.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi_docker as docker

from infra.config import WorkloadConfig

# Same probe as the Kubernetes readiness probe: the V2 protocol's readiness route.
READY_PATH = "/v2/health/ready"
NON_ROOT_USER = "10001:10001"
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi") in bytes."""
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity).groups()
    return int(float(number) * _BINARY.get(unit, 1))


def cpus(quantity: str) -> float:
    """A Kubernetes CPU quantity ("500m", "2") in CPUs."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


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


def docker_run_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """The spec as `docker.from_env().containers.run(**kwargs)` arguments (plain values only)."""
    second = 1_000_000_000
    return {
        "image": spec.image,
        "environment": dict(spec.env),
        "ports": {f"{spec.internal_port}/tcp": ("127.0.0.1", spec.host_port)},
        "healthcheck": {
            "test": spec.healthcheck.test,
            "interval": spec.healthcheck.interval_s * second,
            "timeout": spec.healthcheck.timeout_s * second,
            "retries": spec.healthcheck.retries,
            "start_period": spec.healthcheck.start_period_s * second,
        },
        "mem_limit": spec.memory_bytes,
        "nano_cpus": int(spec.cpus * second),
        "labels": dict(spec.labels),
        "user": spec.user,
        "read_only": spec.read_only,
        "tmpfs": dict(spec.tmpfs),
        "cap_drop": list(spec.cap_drop),
        "security_opt": list(spec.security_opt),
        "restart_policy": {"Name": spec.restart},
        "detach": True,
    }


@dataclass(frozen=True)
class ContainerWorkloadArgs:
    image_ref: pulumi.Input[str]
    workload: WorkloadConfig
    labels: dict[str, str]


class ContainerWorkload(pulumi.ComponentResource):
    """A network and the serving container on it; `endpoint` is the URL clients call."""

    endpoint: pulumi.Output[str]
    container_name: pulumi.Output[str]
    network_name: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerWorkloadArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:ContainerWorkload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        token = args.workload.auth_token
        secret_token = pulumi.Output.secret(token.get_secret_value()) if token else None
        network = docker.Network(f"{name}-net", driver="bridge", opts=child)
        # Pulled from the registry by digest; removed again on destroy so nothing is left behind.
        pulled = docker.RemoteImage(f"{name}-image", name=args.image_ref, keep_locally=False, opts=child)
        spec = container_spec(pulled.image_id, args.workload, args.labels, secret_token)

        fixed_port = spec.host_port is not None
        if fixed_port:
            pulumi.log.warn(
                f"{name}: host port {spec.host_port} is fixed, so a new model replaces the container by "
                "stopping the old one first (a few seconds without service); unset workload.hostPort to "
                "start the new container beside the old one instead.",
                resource=self,
            )
        hc = spec.healthcheck
        self.container = docker.Container(
            name,
            image=spec.image,
            envs=[pulumi.Output.concat(k, "=", v) for k, v in spec.env.items()],
            ports=[docker.ContainerPortArgs(internal=spec.internal_port, external=spec.host_port, ip="127.0.0.1")],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=hc.test,
                interval=f"{hc.interval_s}s",
                timeout=f"{hc.timeout_s}s",
                retries=hc.retries,
                start_period=f"{hc.start_period_s}s",
            ),
            memory=spec.memory_bytes // 2**20,
            cpus=str(spec.cpus),
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in spec.labels.items()],
            user=spec.user,
            read_only=spec.read_only,
            tmpfs=spec.tmpfs,
            capabilities=docker.ContainerCapabilitiesArgs(drops=list(spec.cap_drop)),
            security_opts=list(spec.security_opt),
            restart=spec.restart,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["model"])],
            # `up` returns once the health check passes: the endpoint answers when the stack says it does.
            wait=True,
            wait_timeout=120,
            must_run=True,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=fixed_port),
        )
        host_port = self.container.ports.apply(lambda ports: ports[0].external if ports else None)
        self.endpoint = pulumi.Output.concat("http://127.0.0.1:", host_port.apply(str))
        self.container_name = self.container.name
        self.network_name = network.name
        self.register_outputs({"endpoint": self.endpoint, "container": self.container_name, "network": self.network_name})
