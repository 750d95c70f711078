"""Runs the real `__main__.py`, or any Pulumi program function, under Pulumi's mocks and records what it
registered, with parents and dependencies, and what it exported.

Public: `run_program` (the project's program for a stack), `run_function` (a function declaring resources),
`Run`/`Registered` (the record), `stack_file`, `ROOT`, `DIGEST`, `IMAGE_ID`, and the Docker resource types
`CONTAINER`, `NETWORK`, `IMAGE`.
"""
from __future__ import annotations

import json
import logging
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
from pulumi.runtime import mocks, rpc
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
# The Docker target's resources (pulumi-docker).
CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
IMAGE = "docker:index/remoteImage:RemoteImage"
# What a RemoteImage's `imageId` is (the image's id in the Engine's store).
IMAGE_ID = "sha256:" + "cd" * 32


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    # `<provider URN>::<id>`, or "" for the package's default provider.
    provider: str = ""


@dataclass
class Run:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Registered:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, got {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    @property
    def types(self) -> list[str]:
        return sorted(r.type for r in self.resources)


class _Resources(pulumi.runtime.Mocks):
    """Outputs a provider would compute: enough for the program's `apply`s to resolve."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        state = dict(args.inputs)
        if args.typ == "docker-build:index:Image":
            tag = state["tags"][0]
            state["digest"] = DIGEST
            state["ref"] = f"{tag}@{DIGEST}"
        elif args.typ == IMAGE:
            state["imageId"] = IMAGE_ID
        elif args.typ == CONTAINER:
            # What the provider would add: a name, and the host ports Docker published.
            state["ports"] = [{**p, "external": p.get("external") or 32768} for p in state.get("ports") or []]
            state["name"] = args.name
        elif args.typ == NETWORK:
            state["name"] = args.name
        elif args.typ.startswith("kubernetes:"):
            meta = dict(state.get("metadata") or {})
            meta.setdefault("name", args.name)
            state["metadata"] = meta
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, Optional[list[tuple[str, str]]]]:
        return {}, None


class _Monitor(mocks.MockMonitor):
    def __init__(self, run: Run):
        super().__init__(_Resources())
        self.run = run

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=rpc.deserialize_properties(request.object),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                )
            )
        return response


class _Warnings(logging.Handler):
    def __init__(self, run: Run):
        super().__init__(logging.WARNING)
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        self.run.warnings.append(record.getMessage())


def run_function(
    program: Callable[[], None],
    stack: str = "test",
    config: Optional[dict[str, Any]] = None,
    secret: tuple[str, ...] = (),
    preview: bool = False,
    run: Optional[Run] = None,
) -> Run:
    """Runs `program` as the engine would run a program of `stack` with `config` (sections without the
    namespace); `Run.outputs` holds what it exported.

    Raises whatever the program raises; the `run` passed in holds everything registered up to then.
    """
    run = Run() if run is None else run
    logger = logging.getLogger(f"pulumi-mocks-{stack}")
    logger.handlers[:] = [_Warnings(run)]
    logger.propagate = False
    pulumi.runtime.settings.ROOT.set(None)  # a fresh root stack per run: exports don't leak between runs
    pulumi.runtime.set_mocks(_Resources(), project="modelship", stack=stack, preview=preview, logger=logger, monitor=_Monitor(run))
    pulumi.runtime.set_all_config(
        {f"modelship:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()},
        [f"modelship:{k}" for k in secret],
    )
    settings = pulumi.runtime.settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()
    _sync_await(pulumi.runtime.stack.run_pulumi_func(program))
    # Under mocks the root stack registered before the program ran, so its exports are read off it here.
    exports = pulumi.runtime.settings.get_root_resource().outputs
    run.outputs = _sync_await(pulumi.Output.from_input(exports).future()) or {}
    return run


def run_program(
    stack: str, config: dict[str, Any], secret: tuple[str, ...] = (), preview: bool = False, run: Optional[Run] = None
) -> Run:
    """Runs the project's `__main__.py` for `stack` (see `run_function`)."""
    return run_function(lambda: runpy.run_path(str(ROOT / "__main__.py")), stack, config, secret, preview, run)


def quick_dev_config(store: Path, epochs: int = 2) -> dict[str, Any]:
    """The dev stack with the default training config minus its search, trained for `epochs` into `store`: one
    quick model, for tests about the program rather than model quality (a failing gate would otherwise train every
    search step)."""
    import yaml

    train = yaml.safe_load((ROOT / "model" / "configs" / "digits.yaml").read_text())
    train.pop("search", None)
    train_config = store.parent / f"train-{store.name}.yaml"
    train_config.write_text(yaml.safe_dump({**train, "epochs": epochs}))
    cfg = stack_file("dev")
    cfg["model"] = {"storeDir": str(store), "trainConfig": str(train_config)}
    return cfg


def stack_file(stack: str) -> dict[str, Any]:
    """The `modelship:` sections of `Pulumi.<stack>.yaml`, as `run_program` takes them."""
    import yaml

    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("modelship:")}
