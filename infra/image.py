"""The serving image: app/ plus one gated store entry, tagged by what decides its content, pushed by digest."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import pulumi
import pulumi_docker_build as docker_build

from infra import ROOT
from infra.config import ImageConfig
from infra.registry import Registry
from model.gate import LABEL_PREFIX



def app_hash(app_dir: Path) -> str:
    """sha256 over every file of app/ (sorted relative path, then bytes), caches excluded (docs/contracts.md)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in app_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(app_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def image_tag(model_id: str, app_digest: str) -> str:
    return f"{model_id[:12]}-{app_digest[:12]}"


def image_version(ref: str) -> str:
    """The tag of `<repository>:<tag>@<digest>` (what `image_tag` made, for an image this program built): the
    deployment's version (docs/contracts.md); empty for a ref without a tag."""
    name = ref.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.partition(":")[2]


def gate_build_args(model_id: str, gate_labels: Mapping[str, str]) -> dict[str, str]:
    """app/Dockerfile's build args for what the gate decided, read off the gate's labels (`GateResult.to_labels`):
    the server's `modelship_model_info{gate_passed}` and the image's `ai.modelship.gate.passed` say the same."""
    return {"MODEL_ID": model_id, "GATE_PASSED": gate_labels.get(f"{LABEL_PREFIX}passed", "unknown")}


def build_context(tag: str, entry_dir: Path, app_dir: Path, build_root: Path) -> Path:
    """`<build_root>/<tag>/`: app/ + `model/` (the store entry) + `wheels/`; content-addressed, made once.

    The tag names the content, so an existing context is reused as is; a half-made one never carries
    the name (it is assembled aside and renamed into place).
    """
    context = build_root / tag
    if context.is_dir():
        return context
    partial = build_root / f".{tag}.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(app_dir, partial, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(entry_dir, partial / "model")
    # Wheels come from the host's cache, so the build itself needs no network.
    subprocess.run(
        [str(ROOT / "toolchain" / "wheels.sh"), str(app_dir / "requirements.txt"), str(partial / "wheels")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    partial.rename(context)
    return context


def _engine_build(registry: Registry) -> dict:
    """docker_build.Image settings shared by every image this program pushes.

    The docker-buildx CLI with the Engine's built-in BuildKit (the `default` builder, docker driver): FROM
    resolves the locally built base images, nothing is pulled, and the result lands in the Engine's store (the
    docker driver loads implicitly) and is pushed from there (docs/toolchain.md).
    """
    credentials = (
        [docker_build.RegistryArgs(address=registry.server, username=registry.username, password=registry.password)]
        if registry.password is not None
        else None
    )
    return dict(exec_=True, builder=docker_build.BuilderConfigArgs(name="default"), registries=credentials,
                build_on_preview=False)


def pushed_image(name: str, source: str, registry: Registry, build_root: Path = ROOT / ".modelship" / "build",
                 opts: Optional[pulumi.ResourceOptions] = None) -> pulumi.Output[str]:
    """The local image `source` (`repository:tag`, built by toolchain/images.sh, never pulled) in `registry`
    under the same path and tag: its `<registry>/<repository>:<tag>@sha256:...`, what a cluster's nodes pull."""
    context = build_root / "from-local"  # the build reads no file: FROM is its only instruction
    context.mkdir(parents=True, exist_ok=True)
    image = docker_build.Image(
        name,
        context=docker_build.BuildContextArgs(location=str(context)),
        dockerfile=docker_build.DockerfileArgs(inline=f"FROM {source}\n"),
        tags=[pulumi.Output.concat(registry.server, "/", source)],
        network=docker_build.NetworkMode.NONE,
        push=True,
        **_engine_build(registry),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[registry])),
    )
    return image.ref


@dataclass(frozen=True)
class ModelImageArgs:
    model_id: str
    entry_dir: Path
    gate_labels: dict[str, str]
    image: ImageConfig
    registry: Registry
    app_dir: Path = ROOT / "app"
    build_root: Path = ROOT / ".modelship" / "build"


class ModelImage(pulumi.ComponentResource):
    """`ref` is `<registry>/<name>:<tag>@sha256:...`, what workloads deploy."""

    ref: pulumi.Output[str]
    digest: pulumi.Output[str]
    tag: str

    def __init__(self, name: str, args: ModelImageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:ModelImage", name, None, opts)
        self.tag = image_tag(args.model_id, app_hash(args.app_dir))
        context = build_context(self.tag, args.entry_dir, args.app_dir, args.build_root)
        registry = args.registry
        repository = pulumi.Output.concat(registry.server, "/", args.image.name)
        labels = {
            "org.opencontainers.image.title": args.image.name,
            "org.opencontainers.image.version": self.tag,
            "org.opencontainers.image.base.name": args.image.base_image,
            "ai.modelship.model_id": args.model_id,
            **args.gate_labels,
        }
        self.image = docker_build.Image(
            name,
            context=docker_build.BuildContextArgs(location=str(context)),
            dockerfile=docker_build.DockerfileArgs(location=str(context / "Dockerfile")),
            build_args={"BASE_IMAGE": args.image.base_image, **gate_build_args(args.model_id, args.gate_labels)},
            tags=[pulumi.Output.concat(repository, ":", self.tag)],
            labels=labels,
            # The wheels are in the context: the build has no business on the network.
            network=docker_build.NetworkMode.NONE,
            push=args.image.push,
            **_engine_build(registry),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[registry]),
        )
        self.ref = self.image.ref
        self.digest = self.image.digest
        self.register_outputs({"ref": self.ref, "digest": self.digest, "tag": self.tag})
