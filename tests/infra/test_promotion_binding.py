"""Promotion binds to the digest: a promoted stack's preview reads the image's labels from a real registry and
refuses a stack file whose `promotion.modelId` or `promotion.metrics` the image does not carry.

The stack file is prod's committed one, promoted as `make promote` writes it, then edited by hand; the program
runs under Pulumi's mocks, the registry and the image in it are real.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.gate import GateFailed
from tests.infra.harness import Run, run_program, stack_file
from tests.infra.registry import local_registry, push_labelled

REGISTRY_PORT = 25000
MODEL_ID = "e14" + "0" * 61
OTHER_MODEL_ID = "e14" + "f" * 61
# As the source stack exports them (every scalar of the served format) and as its gate labelled the image (:.4g).
METRICS = {"accuracy": 0.9722222222222222, "f1_macro": 0.9718, "loss": 0.0912}
GATE_LABELS = {"ai.modelship.gate.passed": "true", "ai.modelship.gate.format": "tflite",
               "ai.modelship.gate.accuracy": "0.9722", "ai.modelship.gate.f1_macro": "0.9718"}


@pytest.fixture(scope="module")
def registry() -> str:
    with local_registry(REGISTRY_PORT) as server:
        yield server


@pytest.fixture(scope="module")
def images(registry: str, tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("images")
    return {
        "model": push_labelled(registry, "e14/server", {"ai.modelship.model_id": MODEL_ID, **GATE_LABELS}, tmp / "model"),
        "foreign": push_labelled(registry, "e14/foreign", {"maintainer": "someone else"}, tmp / "foreign"),
    }


def promoted(registry: str, image: str, tmp: Path, **edits) -> dict:
    """Pulumi.prod.yaml after `make promote` wrote `image`, then hand-edited (`edits` over the promotion section)."""
    cfg = stack_file("prod")
    cfg["registry"] = {**cfg["registry"], "server": registry, "password": "local-registry"}
    cfg["promotion"] = {**cfg["promotion"], "image": image, "modelId": MODEL_ID, "metrics": METRICS, **edits}
    written = tmp / "Pulumi.e14-prod.yaml"
    written.write_text(yaml.safe_dump({"config": {f"modelship:{k}": v for k, v in cfg.items()}}))
    return {k.split(":", 1)[1]: v for k, v in yaml.safe_load(written.read_text())["config"].items()}


def refused(cfg: dict) -> str:
    run = Run()
    with pytest.raises(GateFailed) as err:
        run_program("e14-prod", cfg, secret=("registry",), run=run)
    assert run.resources == [], "a refused promotion registers nothing"
    return str(err.value)


def test_the_image_that_holds_the_model_deploys(registry, images, tmp_path):
    run = run_program("e14-prod", promoted(registry, images["model"], tmp_path), secret=("registry",))
    assert run.outputs["imageRef"] == images["model"] and run.outputs["modelId"] == MODEL_ID


def test_a_hand_edited_model_id_is_refused_naming_both(registry, images, tmp_path):
    message = refused(promoted(registry, images["model"], tmp_path, modelId=OTHER_MODEL_ID))
    assert MODEL_ID in message and OTHER_MODEL_ID in message and images["model"] in message, message


def test_hand_edited_metrics_are_refused_naming_both(registry, images, tmp_path):
    # Good enough for prod's gate (accuracy >= 0.95), but not what the image's gate measured.
    message = refused(promoted(registry, images["model"], tmp_path, metrics={**METRICS, "accuracy": 0.99}))
    assert "accuracy 0.9722" in message and "promotion.metrics.accuracy says 0.99" in message, message


def test_another_digest_under_the_models_figures_is_refused(registry, images, tmp_path):
    message = refused(promoted(registry, images["foreign"], tmp_path))
    assert "no ai.modelship.model_id label" in message and MODEL_ID in message, message


def test_an_unreadable_registry_is_refused_not_trusted(images, tmp_path):
    gone = images["model"].replace(f"localhost:{REGISTRY_PORT}", "localhost:1")
    message = refused(promoted("localhost:1", gone, tmp_path))
    assert "cannot read the labels" in message and gone in message, message
