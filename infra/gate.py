"""The preview-time gate: which model, if any, the image may carry.

Runs before the image resource is declared. A model that passes the stack's thresholds is returned; one
that fails either stops the program with the gate table (nothing registered) or, with `gate.onFail: keep`,
yields to the last passing model recorded in the stack's own outputs, with a warning.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pulumi

from app.entry import Signature, Task
from infra.config import DIGEST_REF, GateConfig, ModelConfig, PromotionConfig, RegistryConfig
from infra.stack_outputs import read_outputs, recorded_task
from model.gate import GateResult
from model.store import Store, StoreEntry

ROOT = Path(__file__).resolve().parent.parent
# The stack output that records what the gate let through; `keep` reads it back.
GATE_OUTPUT = "gate"
TRAIN_LOG = ROOT / ".modelship" / "logs" / "train.log"


class GateFailed(pulumi.RunError):
    """Printed by the engine without a traceback: the gate table is the message."""


@dataclass(frozen=True)
class GatedModel:
    gate: GateResult
    # The store entry the image is built from; None for a promoted image (never rebuilt).
    entry: Optional[StoreEntry] = None
    kept: bool = False
    # A promoted model's task and metrics as recorded by the stack it came from.
    promoted: Optional[PromotionConfig] = None

    @property
    def model_id(self) -> str:
        return self.gate.model_id

    @property
    def entry_dir(self) -> Optional[Path]:
        return None if self.entry is None else self.entry.path

    @property
    def task(self) -> Task:
        return self.entry.report.task if self.entry is not None else self.promoted.task

    @property
    def signature(self) -> Optional[Signature]:
        """The model's input and output; a promoted image's is in its own metadata (the server says)."""
        return None if self.entry is None else self.entry.report.signature

    def metrics(self) -> dict[str, float]:
        """Every metric of the served format: what promotion re-checks against the next stack's gate."""
        if self.entry is None:
            return dict(self.promoted.metrics)
        return self.entry.report.served_metrics().scalars()

    def labels(self) -> dict[str, str]:
        return self.gate.to_labels()

    def record(self) -> dict[str, Any]:
        """What the stack exports as its gate output, and what `keep` reads back."""
        return self.gate.model_dump(mode="json")


def _fail_or_keep(result: GateResult, gate: GateConfig, stack: str, reason: str) -> GateResult:
    """The last passing gate result the stack recorded, when `keep` allows it; otherwise the gate table as the error."""
    table = result.to_markdown()
    if gate.on_fail == "fail":
        raise GateFailed(f"stack '{stack}': {reason}; nothing was registered.\n\n{table}")
    recorded = read_outputs(stack).get(GATE_OUTPUT)
    if not recorded:
        raise GateFailed(
            f"stack '{stack}': {reason}, and gate.onFail is keep but the stack has no passing model "
            f"recorded yet (no `{GATE_OUTPUT}` output); nothing was registered.\n\n{table}"
        )
    last = GateResult.model_validate(recorded)
    pulumi.log.warn(
        f"gate failed for model {result.model_id[:12]}; keeping the last passing model {last.model_id[:12]} "
        f"(gate.onFail: keep).\n\n{table}"
    )
    return last


@contextmanager
def _native_output_to(log: Path) -> Iterator[None]:
    """TensorFlow and LiteRT log from C++ straight to file descriptors 1 and 2, and the engine would show each
    line as a diagnostic of the stack (and the PR comment would carry them): they go to `log` instead."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with log.open("ab") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def gated_model(model: ModelConfig, gate: GateConfig, stack: str) -> GatedModel:
    """Trains into the store, or reuses the stored entry without importing TensorFlow, then applies the gate."""
    from model import DataError, TrainConfigError, gated_entry

    store = Store(ROOT / model.store_dir)
    try:
        with _native_output_to(TRAIN_LOG):
            entry, result = gated_entry(ROOT / model.train_config, model.training_overrides(), gate.thresholds, store.root)
    except (TrainConfigError, DataError) as err:
        raise GateFailed(
            f"stack '{stack}': no model to gate from {model.train_config} (modelship:model.trainConfig, overrides); "
            f"nothing was registered.\n{err}"
        ) from None
    if result.passed:
        pulumi.log.info(f"{result.to_markdown()}\n(training output, if any: {TRAIN_LOG.relative_to(ROOT)})")
        return GatedModel(result, entry)
    last = _fail_or_keep(result, gate, stack, f"model {result.model_id[:12]} failed the gate")
    kept = store.get(last.model_id)
    if kept is None:
        raise GateFailed(f"stack '{stack}': the last passing model {last.model_id[:12]} (gate.onFail: keep) is not in the "
                         f"store {store.root}; run `make up` once with a passing model, or set gate.onFail: fail")
    return GatedModel(last, kept, kept=True)


def resolve_reference(promotion: PromotionConfig) -> PromotionConfig:
    """Reference mode (`promotion.fromStack`): the source stack's current outputs stand in for a pinned digest.

    Read at program time, not through a `pulumi.StackReference` Output, because the gate needs plain values
    before any resource is declared.
    """
    if not promotion.from_stack:
        return promotion
    source = read_outputs(promotion.from_stack)
    missing = [k for k in ("imageRef", "modelId", "metrics") if k not in source]
    if missing:
        raise GateFailed(f"promotion.fromStack '{promotion.from_stack}' has no {', '.join(missing)} output: has it been deployed?")
    image = source["imageRef"]
    if promotion.require_digest and not DIGEST_REF.match(image):
        raise GateFailed(f"promotion.fromStack '{promotion.from_stack}' serves {image!r}, which is not pinned by digest")
    return promotion.model_copy(update={"image": image, "model_id": source["modelId"], "metrics": source["metrics"],
                                        "task": recorded_task(source)})


def promoted_model(promotion: PromotionConfig, gate: GateConfig, stack: str, registry: RegistryConfig) -> GatedModel:
    """Re-checks a promoted model's recorded metrics against this stack's thresholds (no training, no build),
    once the promoted image itself has shown it carries that model and those figures (`bind_to_image`)."""
    from model.gate import evaluate

    result = evaluate(promotion.model_id, {**promotion.metrics, "task": promotion.task}, gate.thresholds)
    if not result.passed:
        raise GateFailed(
            f"stack '{stack}': promoted model {result.model_id[:12]} fails this stack's gate; nothing was registered."
            f"\n\n{result.to_markdown()}"
        )
    bind_to_image(promotion, registry, stack)
    pulumi.log.info(result.to_markdown())
    return GatedModel(result, promoted=promotion)


def bind_to_image(promotion: PromotionConfig, registry: RegistryConfig, stack: str) -> None:
    """Refuses a promotion whose stack file says other than the image: the model id and every gate figure the
    image's labels carry (read from its registry by digest) must be the stack file's `modelId` and `metrics`."""
    from infra.oci import RegistryUnreadable, image_labels
    from model.gate import LABEL_PREFIX

    image = promotion.image
    ours = registry.server is not None and image.split("/", 1)[0] == registry.server
    password = registry.password.get_secret_value() if ours and registry.password is not None else None
    try:
        labels = image_labels(image, registry.username if ours else None, password)
    except RegistryUnreadable as err:
        raise GateFailed(
            f"stack '{stack}': cannot read the labels of promotion.image {image} from its registry, so nothing binds "
            f"promotion.modelId and promotion.metrics to it; nothing was registered.\n{err}"
        ) from None
    problems = []
    carried = labels.get("ai.modelship.model_id")
    if carried != promotion.model_id:
        problems.append(f"the image carries model {carried or '(no ai.modelship.model_id label)'}, "
                        f"promotion.modelId says {promotion.model_id}")
    for key, figure in sorted(labels.items()):
        metric = key[len(LABEL_PREFIX):]
        if not key.startswith(LABEL_PREFIX) or metric in ("passed", "format"):
            continue
        # The label is the source gate's figure, written `:.4g` from the same float the stack file records.
        recorded = promotion.metrics.get(metric)
        if recorded is None or f"{recorded:.4g}" != figure:
            problems.append(f"the image's gate measured {metric} {figure}, promotion.metrics.{metric} says {recorded}")
    if problems:
        raise GateFailed(
            f"stack '{stack}': promotion.image {image} does not hold what Pulumi.{stack}.yaml claims; nothing was registered.\n  - "
            + "\n  - ".join(problems)
            + "\nRe-run `make promote` to write the image's own model and figures, or pin the image that holds them."
        )
