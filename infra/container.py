"""The Docker target: one plain-Python container spec, declared through pulumi-docker.

`container_spec()` is the single description of the serving container. `container_args()` turns it into
`docker.Container` arguments, what `ContainerWorkload` declares; `docker_run_kwargs()` into the docker SDK's
`containers.run` arguments, what tests start directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi_docker as docker

from infra import READY_PATH, docker_engine
from infra.config import WorkloadConfig
from infra.proxy import ReverseProxy, ReverseProxyArgs

NON_ROOT_USER = "10001:10001"
# What every serving container answers to on its network: the reverse proxy and Prometheus find each one by it.
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


def container_args(spec: ContainerSpec) -> dict[str, Any]:
    """The spec as `docker.Container` arguments, but for the image, health check, labels and restart policy,
    which `docker_engine.container()` takes (values may be `pulumi.Input`s)."""
    env = [pulumi.Output.concat(key, "=", value) for key, value in sorted(spec.env.items())]
    # No published port: the servers are reached over the stack's network, through the proxy.
    return {
        "envs": env,
        # The provider takes MiB. No swap on top (as on Kubernetes); unset, Docker would allow as much again, and
        # the provider would read that back as a change.
        "memory": spec.memory_bytes // 2**20,
        "memory_swap": spec.memory_bytes // 2**20,
        # As the provider reads it back ("1.0", "0.5"): another spelling would replace the container on every up.
        "cpus": str(float(spec.cpus)),
        "user": spec.user,
        "read_only": spec.read_only,
        "tmpfs": dict(spec.tmpfs),
        "capabilities": docker.ContainerCapabilitiesArgs(drops=list(spec.cap_drop)),
        "security_opts": list(spec.security_opt),
    }


def healthcheck_args(spec: ContainerSpec) -> docker.ContainerHealthcheckArgs:
    hc = spec.healthcheck
    return docker_engine.healthcheck(hc.test, hc.interval_s, hc.timeout_s, hc.retries, hc.start_period_s)


def docker_run_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """The spec as `docker.from_env().containers.run(**kwargs)` arguments (plain values only)."""
    hc, second = spec.healthcheck, 1_000_000_000
    return {
        "image": spec.image,
        "environment": dict(spec.env),
        "ports": {f"{spec.internal_port}/tcp": ("127.0.0.1", spec.host_port)},
        "healthcheck": {"test": list(hc.test), "interval": hc.interval_s * second, "timeout": hc.timeout_s * second,
                        "retries": hc.retries, "start_period": hc.start_period_s * second},
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
    """A network, the serving image pulled into the Engine, `workload.replicas` model server containers on the
    network (no host port), and the reverse proxy (infra/proxy.py) that owns the stack's host port in front of them;
    `endpoint` is the URL clients call.

    A new model (or any change to the servers) replaces each server container create-before-delete, one slot after
    the other: the new container of a slot is created and `up` waits until it is healthy (the provider's `wait`)
    before the next slot's starts; the proxy sends it requests once its readiness route answers; the engine deletes
    the old containers at the end of the `up`, each finishing its in-flight requests first. A container that never
    gets healthy fails the `up` there: the slots after it are not touched, and no old container is deleted."""

    endpoint: pulumi.Output[str]
    network_name: pulumi.Output[str]
    container_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ContainerWorkloadArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:ContainerWorkload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        workload = args.workload
        token = workload.auth_token
        secret_token = pulumi.Output.secret(token.get_secret_value()) if token else None
        network = docker_engine.network(f"{name}-net", opts=child)
        # Present in the Engine (pulled from the registry by digest if not). Kept there when the stack moves on:
        # after a failed update and its repair the model goes A -> B -> A, and removing the reference of the
        # replaced RemoteImage would then remove the image the serving containers run (the Engine refuses, the `up`
        # fails). A built image stays in the store under its build tag anyway.
        pulled = docker_engine.local_image(f"{name}-image", args.image_ref, opts=child)
        spec = container_spec(pulled.image_id, workload, args.labels, secret_token)

        self.containers: list[docker.Container] = []
        for slot in range(workload.replicas):
            previous = self.containers[-1:]
            self.containers.append(docker_engine.container(
                f"{name}-{slot}",
                image=spec.image,
                health=healthcheck_args(spec),
                labels=spec.labels,
                # Every server answers to the alias: the proxy and Prometheus find each of them by it.
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[MODEL_ALIAS])],
                ready_timeout_s=workload.ready_timeout_seconds,
                # The provider would delete first (a container name cannot be taken twice); these names are the
                # provider's own (`<slot>-<random>`), so the new container starts beside the old one. Slot by
                # slot: one rollout never starts more than one new container at a time.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False, depends_on=previous),
                **container_args(spec),
            ))
        proxy = ReverseProxy(
            f"{name}-proxy",
            ReverseProxyArgs(image=workload.proxy_image, network_name=network.name, host_port=workload.host_port,
                             backend_alias=MODEL_ALIAS, backend_port=spec.internal_port, ready_path=READY_PATH,
                             after=self.containers),
            opts=child,
        )
        self.endpoint = pulumi.Output.concat("http://127.0.0.1:", proxy.host_port)
        self.network_name = network.name
        self.container_names = pulumi.Output.all(*[c.name for c in self.containers])
        self.register_outputs({"endpoint": self.endpoint, "containers": self.container_names, "network": self.network_name})
