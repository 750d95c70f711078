"""What every Docker resource of the program shares, on pulumi-docker (`import pulumi_docker as docker`).

The resource plugin is pulumi-docker 5.2.0's, built offline by toolchain/pulumi.sh (docs/toolchain.md). Here:
the stack label on everything a stack makes (`ai.modelship.stack=<project>/<stack>`: what a stack made is
findable), health checks in the provider's terms, local images by their id, and `container()`, which declares a
container that `up` waits for until it is healthy (the provider's `wait`).

A container that never gets healthy fails the `up` (the provider's "container failed to be in healthy state"),
and the error hook below adds what the dynamic provider this replaced used to say: its last log lines. The
provider keeps that container (its state says so, and `docker logs` still works); a replacement created beside
the old one never reaches the old one's dependents, which keep what they had, the old one is not deleted, and the
next `up` replaces the failed one.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_docker as docker

from infra.recovery import STACK_LABEL

# How long a stopping container gets between SIGTERM and SIGKILL (the server drains in-flight requests).
STOP_TIMEOUT_S = 10
READY_TIMEOUT_S = 120
LOG_LINES = 40


def stack_label() -> tuple[str, str]:
    return STACK_LABEL, f"{pulumi.get_project()}/{pulumi.get_stack()}"


def container_labels(extra: Mapping[str, Any]) -> list[docker.ContainerLabelArgs]:
    """`extra` plus the stack label, in the provider's list-of-pairs form."""
    labels = {**extra, **dict([stack_label()])}
    return [docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(labels.items())]


def network(name: str, opts: Optional[pulumi.ResourceOptions] = None) -> docker.Network:
    """A bridge network of the stack's (autonamed `<name>-<suffix>`)."""
    key, value = stack_label()
    return docker.Network(name, driver="bridge", labels=[docker.NetworkLabelArgs(label=key, value=value)], opts=opts)


def local_image(name: str, ref: pulumi.Input[str], opts: Optional[pulumi.ResourceOptions] = None) -> docker.RemoteImage:
    """An image in the Engine's store by its id: containers name it by id, as the provider reads them back
    (a name would differ from what a refresh reads, and replace the container on every `up`). Pulled only when
    absent (the serving image, from the stack's registry; the base images are local, never pulled); never removed
    (infra/container.py says why for the serving image)."""
    return docker.RemoteImage(name, name=ref, keep_locally=True, opts=opts)


def healthcheck(test: Sequence[str], interval_s: int = 5, timeout_s: int = 3, retries: int = 3,
                start_period_s: int = 0) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=list(test), interval=f"{interval_s}s", timeout=f"{timeout_s}s", retries=retries,
        start_period=f"{start_period_s}s",
    )


def _last_logs(name: str) -> str:
    import docker as docker_sdk

    try:
        client = docker_sdk.from_env()
        return client.containers.get(name).logs(tail=LOG_LINES).decode(errors="replace").rstrip()
    except Exception as err:  # the logs are for the message; their absence must not hide the failure
        return f"(no logs: {err})"


def _report(args: pulumi.ErrorHookArgs) -> bool:
    name = (args.new_inputs or {}).get("name", "")
    pulumi.log.error(
        f"container {name} ({args.name}) did not come up: {'; '.join(args.errors)}. The old container, if any, keeps "
        f"serving; `up` again replaces this one. Its last {LOG_LINES} log lines:\n{_last_logs(name)}"
    )
    return False  # a container that did not get healthy will not get healthy by being created again


@functools.cache
def _failure_report() -> pulumi.ErrorHook:
    # Registered with the engine once per program run, on first use (a hook needs the running engine).
    return pulumi.ErrorHook("modelship-container-logs", _report)


def container(
    name: str,
    *,
    image: pulumi.Input[str],
    health: docker.ContainerHealthcheckArgs,
    labels: Mapping[str, Any] = {},
    ready_timeout_s: int = READY_TIMEOUT_S,
    opts: Optional[pulumi.ResourceOptions] = None,
    **args: Any,
) -> docker.Container:
    """A started container that `up` waits for until healthy (at most `ready_timeout_s`); `image` is an image id
    (`local_image()`), `args` are further `docker.Container` arguments."""
    hooks = pulumi.ResourceOptions(hooks=pulumi.ResourceHookBinding(on_error=[_failure_report()]))
    return docker.Container(
        name,
        image=image,
        healthcheck=health,
        wait=True,
        wait_timeout=ready_timeout_s,
        destroy_grace_seconds=STOP_TIMEOUT_S,
        restart="unless-stopped",
        labels=container_labels(labels),
        opts=pulumi.ResourceOptions.merge(opts, hooks),
        **args,
    )
