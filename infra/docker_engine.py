"""Docker networks, containers and images as Pulumi resources: a dynamic provider over the docker SDK.

pulumi-docker's provider plugin cannot be built here (docs/toolchain.md), so these resources run in
Pulumi's Python dynamic provider host (`pulumi-resource-pulumi-python`). Each provider is a thin adapter:
`check` validates the inputs (pydantic) and names the object, `diff` replaces on any change, `create`,
`read` and `delete` are docker SDK calls. The inputs are the docker SDK's own keyword arguments.

The providers are pickled into the state by reference (this module, imported from the project root where
the engine starts the provider host), so they carry no state and import `docker` inside their methods.
Every object made carries the label `ai.modelship.stack=<project>/<stack>`: what a stack made is findable.
"""
from __future__ import annotations

import io
import json
import secrets
import tarfile
import time
from typing import Any, ClassVar, Mapping, Optional

import pulumi
from pulumi import dynamic
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

STACK_LABEL = "ai.modelship.stack"
# How long a stopping container gets between SIGTERM and SIGKILL (the server drains in-flight requests).
STOP_TIMEOUT_S = 10
READY_POLL_S = 0.5
LOG_LINES = 40


# --- inputs ---------------------------------------------------------------------------------------


class Props(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkProps(Props):
    """`networks.create` arguments; `name` is `name_prefix` plus a random suffix unless given."""

    name_prefix: str
    name: Optional[str] = None
    driver: str = "bridge"
    labels: dict[str, str] = Field(default_factory=dict)


class Healthcheck(Props):
    """The docker SDK's healthcheck: durations in nanoseconds."""

    test: list[str] = Field(min_length=1)
    interval: int = Field(gt=0)
    timeout: int = Field(gt=0)
    retries: int = Field(ge=1)
    start_period: int = Field(ge=0)


class Attachment(Props):
    name: str
    aliases: list[str] = Field(default_factory=list)


class ContainerProps(Props):
    """`containers.create` arguments (docker SDK names) plus the networks it joins, the files copied into it
    before it starts (path -> text, world-readable) and how long it may take to become healthy."""

    name_prefix: str
    name: Optional[str] = None
    image: str
    command: Optional[list[str]] = None
    environment: dict[str, str] = Field(default_factory=dict)
    # "<port>/tcp" -> (host ip, host port or None for one Docker picks).
    ports: dict[str, tuple[str, Optional[int]]] = Field(default_factory=dict)
    healthcheck: Optional[Healthcheck] = None
    mem_limit: Optional[int] = Field(None, gt=0)
    nano_cpus: Optional[int] = Field(None, gt=0)
    labels: dict[str, str] = Field(default_factory=dict)
    user: Optional[str] = None
    read_only: bool = False
    tmpfs: dict[str, str] = Field(default_factory=dict)
    cap_drop: list[str] = Field(default_factory=list)
    security_opt: list[str] = Field(default_factory=list)
    restart_policy: dict[str, str] = Field(default_factory=lambda: {"Name": "no"})
    networks: list[Attachment] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    ready_timeout_s: int = Field(120, gt=0)

    @property
    def fixed_host_port(self) -> bool:
        return any(host_port is not None for _, host_port in self.ports.values())

    def create_kwargs(self, client) -> dict[str, Any]:
        """`containers.create` keyword arguments; the first network is joined at creation, with its aliases."""
        kwargs = self.model_dump(exclude={"name_prefix", "networks", "files", "ready_timeout_s"}, exclude_none=True)
        if self.networks:
            first = self.networks[0]
            kwargs["network"] = first.name
            kwargs["networking_config"] = {first.name: client.api.create_endpoint_config(aliases=first.aliases)}
        return kwargs


class ImageProps(Props):
    """A registry image present in the Engine's store: pulled unless already there, removed on delete
    unless `keep_locally`."""

    ref: str
    keep_locally: bool = False


class PushedImageProps(Props):
    """A local image (`source`, never pulled) pushed to `repository` (`<registry>/<path>`) under `tag`; the
    output `ref` pins what was pushed by digest. `username`/`password`: the registry's, when it wants them."""

    source: str
    repository: str
    tag: str
    username: Optional[str] = None
    password: Optional[str] = None


# --- provider side --------------------------------------------------------------------------------


class ContainerFailed(Exception):
    pass


def _client():
    import docker

    return docker.from_env(timeout=300)


def _known(value: Any) -> bool:
    """False for a value (or a part of it) only known after another resource is made (in a preview)."""
    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return False
    if isinstance(value, dict):
        return all(_known(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_known(v) for v in value)
    return True


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _inputs(props: Mapping[str, Any], model: type[Props]) -> dict[str, Any]:
    """The props that are inputs (state outputs also hold `__provider` and what the provider observed)."""
    return {k: v for k, v in props.items() if k in model.model_fields}


class _Adapter(dynamic.ResourceProvider):
    """check (validate, name) and diff (replace on any input change), shared by the three resources."""

    serialize_as_secret_always = False
    model: ClassVar[type[Props]]

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        inputs = dict(news)
        if "name_prefix" in self.model.model_fields and not inputs.get("name"):
            # Kept across updates; a replacement checks again without olds, so the new object gets a new name
            # and can start beside the old one.
            inputs["name"] = (olds or {}).get("name") or f"{inputs.get('name_prefix', '')}{secrets.token_hex(4)}"
        fields = _inputs(inputs, self.model)
        if not _known(fields):
            return dynamic.CheckResult(inputs, [])
        try:
            self.model.model_validate(fields)
        except ValidationError as err:
            failures = [
                dynamic.CheckFailure(".".join(str(p) for p in e["loc"]) or "?", e["msg"]) for e in err.errors()
            ]
            return dynamic.CheckResult(inputs, failures)
        return dynamic.CheckResult(inputs, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [
            key for key in self.model.model_fields
            if not _known(news.get(key)) or _canonical(olds.get(key)) != _canonical(news.get(key))
        ]
        changed += self._drifted(olds)
        return dynamic.DiffResult(
            changes=bool(changed), replaces=changed, delete_before_replace=bool(changed) and self._exclusive(olds, news)
        )

    def update(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> dynamic.UpdateResult:
        raise ContainerFailed("docker objects are replaced, never updated in place (diff replaces on every change)")

    def _drifted(self, olds: dict[str, Any]) -> list[str]:
        """Observed properties that call for a replacement (after a refresh)."""
        return []

    def _exclusive(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        """Old and new cannot exist side by side: delete the old first."""
        return False


class NetworkProvider(_Adapter):
    model = NetworkProps

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        spec = NetworkProps.model_validate(_inputs(props, NetworkProps))
        network = _client().networks.create(spec.name, driver=spec.driver, labels=spec.labels, check_duplicate=True)
        return dynamic.CreateResult(network.id, {**_inputs(props, NetworkProps), "network_id": network.id})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        import docker

        try:
            network = _client().networks.get(id_)
        except docker.errors.NotFound:
            return dynamic.ReadResult("", {})
        return dynamic.ReadResult(id_, {**_inputs(props, NetworkProps), "name": network.name, "network_id": network.id})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        import docker

        try:
            _client().networks.get(id_).remove()
        except docker.errors.NotFound:
            pass


def _tar(files: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _observed(container) -> dict[str, Any]:
    """What the Engine says about a container: status, its address on each network, its published host ports."""
    container.reload()
    settings = container.attrs["NetworkSettings"]
    published = {
        port: int(bindings[0]["HostPort"]) for port, bindings in (settings.get("Ports") or {}).items() if bindings
    }
    addresses = {name: net.get("IPAddress", "") for name, net in (settings.get("Networks") or {}).items()}
    return {"name": container.name, "status": container.status, "ip_addresses": addresses, "published": published}


def _probe(container, test: list[str]) -> bool:
    """Runs the container's own health test now, instead of waiting for the Engine's next scheduled one."""
    kind, *command = test
    if kind == "CMD-SHELL":
        command = ["/bin/sh", "-c", command[0]]
    elif kind != "CMD":
        return False
    import docker

    try:
        exit_code, _ = container.exec_run(command)
    except docker.errors.APIError:  # it stopped between the status check and the exec: the next poll says why
        return False
    return exit_code == 0


def _wait_ready(container, spec: ContainerProps) -> None:
    """Returns once the container is healthy (running, without a health check); raises ContainerFailed otherwise."""
    deadline = time.monotonic() + spec.ready_timeout_s
    while True:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] in ("exited", "dead") or state.get("Restarting"):
            raise ContainerFailed(f"it exited with code {state.get('ExitCode')}")
        health = state.get("Health") or {}
        if spec.healthcheck is None and state["Status"] == "running":
            return
        if health.get("Status") == "healthy":
            return
        if health.get("Status") == "unhealthy":
            last = (health.get("Log") or [{}])[-1].get("Output", "").strip()
            raise ContainerFailed(f"its health check failed: {last}")
        if state["Status"] == "running" and spec.healthcheck is not None and _probe(container, spec.healthcheck.test):
            return
        if time.monotonic() > deadline:
            raise ContainerFailed(f"it was not healthy within {spec.ready_timeout_s} s")
        time.sleep(READY_POLL_S)


def _last_logs(container) -> str:
    try:
        return container.logs(tail=LOG_LINES).decode(errors="replace").rstrip()
    except Exception as err:  # the logs are for the message; their absence must not hide the failure
        return f"(no logs: {err})"


class ContainerProvider(_Adapter):
    model = ContainerProps

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        import docker

        spec = ContainerProps.model_validate(_inputs(props, ContainerProps))
        client = _client()
        try:
            container = client.containers.create(**spec.create_kwargs(client))
        except docker.errors.ImageNotFound:
            raise ContainerFailed(
                f"container {spec.name}: image {spec.image!r} is not in the Docker Engine's store. Base images come "
                "from `make bootstrap` (toolchain/images.sh); the serving image from the stack's image resource."
            ) from None
        try:
            for extra in spec.networks[1:]:
                client.networks.get(extra.name).connect(container, aliases=extra.aliases)
            if spec.files:
                container.put_archive("/", _tar(spec.files))
            container.start()
            _wait_ready(container, spec)
        except (ContainerFailed, docker.errors.APIError) as err:
            logs = _last_logs(container)
            container.remove(force=True, v=True)
            # The old container, if any, is untouched: the engine keeps it (create-before-delete).
            raise ContainerFailed(
                f"container {spec.name} ({spec.image}) did not come up: {err}. It was removed; its last "
                f"{LOG_LINES} log lines:\n{logs}"
            ) from None
        return dynamic.CreateResult(container.id, {**_inputs(props, ContainerProps), **_observed(container)})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        import docker

        try:
            container = _client().containers.get(id_)
        except docker.errors.NotFound:
            return dynamic.ReadResult("", {})
        return dynamic.ReadResult(id_, {**_inputs(props, ContainerProps), **_observed(container)})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        import docker

        try:
            container = _client().containers.get(id_)
            container.stop(timeout=STOP_TIMEOUT_S)
            # v: the image's anonymous volumes (Prometheus' TSDB, the registry's storage) go with it.
            container.remove(v=True)
        except docker.errors.NotFound:
            pass

    def _drifted(self, olds: dict[str, Any]) -> list[str]:
        # A refresh found the container stopped: `up` starts a new one.
        return ["status"] if olds.get("status") not in (None, "running") else []

    def _exclusive(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        # A fixed host port cannot be held by the old and the new container at once.
        return _fixed_port(news.get("ports"))


def _fixed_port(ports: Any) -> bool:
    return isinstance(ports, dict) and any(_known(b) and b[1] is not None for b in ports.values())


def _image_names(image, ref: str) -> list[str]:
    """The names `ref` put on `image`: its repo@digest, then its repo:tag (the last one removes the image)."""
    name = ref.split("@", 1)[0]
    repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    digests = [d for d in image.attrs.get("RepoDigests") or [] if d.split("@", 1)[0] == repository]
    return digests + [t for t in image.tags if t == name]


class ImageProvider(_Adapter):
    model = ImageProps

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        import docker

        spec = ImageProps.model_validate(_inputs(props, ImageProps))
        client = _client()
        try:
            image = client.images.get(spec.ref)
        except docker.errors.ImageNotFound:
            try:
                image = client.images.pull(spec.ref)
            except docker.errors.APIError as err:
                raise ContainerFailed(f"image {spec.ref} is neither in the Engine's store nor pullable: {err}") from None
        return dynamic.CreateResult(image.id, {**_inputs(props, ImageProps), "image_id": image.id})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        import docker

        try:
            image = _client().images.get(id_)
        except docker.errors.ImageNotFound:
            return dynamic.ReadResult("", {})
        return dynamic.ReadResult(id_, {**_inputs(props, ImageProps), "image_id": image.id})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        import docker

        if props.get("keep_locally"):
            return
        client = _client()
        try:
            image = client.images.get(id_)
            for name in _image_names(image, props["ref"]):
                client.images.remove(name)
        except docker.errors.ImageNotFound:
            pass


class PushedImageProvider(_Adapter):
    model = PushedImageProps

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        import docker

        spec = PushedImageProps.model_validate(_inputs(props, PushedImageProps))
        client = _client()
        try:
            client.images.get(spec.source).tag(spec.repository, spec.tag)
        except docker.errors.ImageNotFound:
            raise ContainerFailed(f"image {spec.source} is not in the Engine's store: build the base images "
                                  "(`make bootstrap`, docs/images.md)") from None
        auth = {"username": spec.username, "password": spec.password} if spec.password else None
        failed = [line for line in client.images.push(spec.repository, spec.tag, auth_config=auth, stream=True, decode=True)
                  if "error" in line]
        if failed:
            raise ContainerFailed(f"pushing {spec.source} to {spec.repository}:{spec.tag} failed: {failed[-1]['error']}")
        pushed = client.images.get(f"{spec.repository}:{spec.tag}")
        (digest,) = {d.split("@", 1)[1] for d in pushed.attrs.get("RepoDigests") or [] if d.split("@", 1)[0] == spec.repository}
        ref = f"{spec.repository}:{spec.tag}@{digest}"
        return dynamic.CreateResult(ref, {**_inputs(props, PushedImageProps), "ref": ref})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        return dynamic.ReadResult(id_, props)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """The registry keeps what was pushed (a digest may still be deployed elsewhere); the local tag goes."""
        import docker

        try:
            _client().images.remove(f"{props['repository']}:{props['tag']}")
        except docker.errors.ImageNotFound:
            pass


# --- program side ---------------------------------------------------------------------------------


def provider_host(name: str) -> pulumi.ProviderResource:
    """A dynamic provider host of the stack's own for these resources (children of components declared with
    `ResourceOptions(providers=[host])` use it). The engine hands the default `pulumi-python` provider the
    whole stack config as its inputs, so any config change (a gate threshold) would show it as updated."""
    return pulumi.ProviderResource("pulumi-python", name, {})


def healthcheck(test: list[str], interval_s: int = 10, timeout_s: int = 3, retries: int = 3, start_period_s: int = 0) -> dict[str, Any]:
    """A `healthcheck` input from seconds (`create` runs the test itself too, so a start is not held up by
    the interval)."""
    second = 1_000_000_000
    return {"test": list(test), "interval": interval_s * second, "timeout": timeout_s * second, "retries": retries,
            "start_period": start_period_s * second}


def _declared(model: type[Props], resource: str, props: Mapping[str, Any], outputs: tuple[str, ...]) -> dict[str, Any]:
    """The props as the provider gets them (unknown keys refused now, values checked by the provider),
    with the stack label and a slot for each output the provider computes."""
    unknown = sorted(set(props) - set(model.model_fields))
    if unknown:
        raise TypeError(f"{resource}: unknown {model.__name__} key(s) {unknown}; known: {sorted(model.model_fields)}")
    declared = dict(props)
    if "labels" in model.model_fields:
        owner = f"{pulumi.get_project()}/{pulumi.get_stack()}"
        declared["labels"] = pulumi.Output.from_input(props.get("labels") or {}).apply(lambda l: {**l, STACK_LABEL: owner})
    if "name_prefix" in model.model_fields:
        declared.setdefault("name_prefix", f"{resource}-")
        declared.setdefault("name", None)
    return {**declared, **{key: None for key in outputs}}


class Network(dynamic.Resource, module="docker", name="Network"):
    name: pulumi.Output[str]
    network_id: pulumi.Output[str]

    def __init__(self, resource_name: str, props: Mapping[str, Any], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(NetworkProvider(), resource_name, _declared(NetworkProps, resource_name, props, ("network_id",)), opts)


class Container(dynamic.Resource, module="docker", name="Container"):
    """A started container; `create` returns once it is healthy. `published`: "<port>/tcp" -> host port."""

    name: pulumi.Output[str]
    status: pulumi.Output[str]
    ip_addresses: pulumi.Output[dict]
    published: pulumi.Output[dict]

    def __init__(self, resource_name: str, props: Mapping[str, Any], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(
            ContainerProvider(), resource_name,
            _declared(ContainerProps, resource_name, props, ("status", "ip_addresses", "published")), opts,
        )


class Image(dynamic.Resource, module="docker", name="Image"):
    image_id: pulumi.Output[str]
    ref: pulumi.Output[str]

    def __init__(self, resource_name: str, props: Mapping[str, Any], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(ImageProvider(), resource_name, _declared(ImageProps, resource_name, props, ("image_id",)), opts)


class PushedImage(dynamic.Resource, module="docker", name="PushedImage"):
    ref: pulumi.Output[str]

    def __init__(self, resource_name: str, props: Mapping[str, Any], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(PushedImageProvider(), resource_name, _declared(PushedImageProps, resource_name, props, ("ref",)), opts)
