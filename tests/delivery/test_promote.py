"""`python -m infra.promote`: what it refuses, and that a refusal leaves the target's stack file as it was.

The source stacks are real ones on a local backend (a small program that exports the outputs a deployed dev
stack has), read through the CLI as promote reads them; the target files are the committed staging and prod.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.promote import PromotionRefused, promote

ROOT = Path(__file__).resolve().parents[2]

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"localhost:5000/modelship/server:0123456789ab-ba9876543210@{DIGEST}"
MODEL_ID = "c" * 64
GOOD = {"accuracy": 0.98, "f1_macro": 0.98, "loss": 0.07}
PROGRAM = """import json
import pulumi

for name, value in json.loads(pulumi.Config().require("outputs")).items():
    pulumi.export(name, value)
"""


class Project:
    """A scratch project named like ours, with the committed promoted stack files, on its own backend."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        (root / "Pulumi.yaml").write_text(yaml.safe_dump(
            {"name": "modelship", "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}}
        ))
        (root / "__main__.py").write_text(PROGRAM)
        (root / "venv").symlink_to(ROOT / "venv")
        for stack in ("staging", "prod"):
            shutil.copy(ROOT / f"Pulumi.{stack}.yaml", root / f"Pulumi.{stack}.yaml")
        (root / "state").mkdir()
        monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{root / 'state'}")
        monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "promote-tests")

    def pulumi(self, *args: str) -> None:
        proc = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.root, capture_output=True, text=True)
        assert proc.returncode == 0, f"pulumi {' '.join(args)}: {proc.stderr}{proc.stdout[-2000:]}"

    def deployed(self, stack: str, outputs: dict[str, Any]) -> None:
        """A stack whose last update exported `outputs`."""
        self.pulumi("stack", "init", stack)
        self.pulumi("config", "set", "outputs", json.dumps(outputs), "--stack", stack)
        self.pulumi("up", "--yes", "--skip-preview", "--stack", stack)

    def stack_file(self, stack: str) -> str:
        return (self.root / f"Pulumi.{stack}.yaml").read_text()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    if shutil.which("pulumi") is None:
        pytest.fail("the pulumi CLI is not on PATH: run `make bootstrap`, then `source toolchain/env.sh`", pytrace=False)
    return Project(tmp_path, monkeypatch)


def test_a_source_that_was_never_deployed_is_refused(project: Project) -> None:
    project.pulumi("stack", "init", "dev")
    before = project.stack_file("staging")
    with pytest.raises(PromotionRefused, match=r"stack 'dev' has no imageRef, modelId, metrics output: run `pulumi up` on it first"):
        promote("dev", "staging", root=project.root)
    assert project.stack_file("staging") == before


def test_a_model_below_the_targets_bar_is_refused_with_the_gate_table(project: Project) -> None:
    # Good enough for staging (0.93), not for prod (0.95).
    project.deployed("staging", {"imageRef": IMAGE, "modelId": MODEL_ID, "metrics": {**GOOD, "accuracy": 0.94}})
    before = project.stack_file("prod")
    with pytest.raises(PromotionRefused) as refused:
        promote("staging", "prod", root=project.root)
    message = str(refused.value)
    assert f"model {MODEL_ID[:12]} fails the gate of stack 'prod'" in message
    assert "| accuracy | 0.9400 | >= 0.95 | **FAIL** |" in message
    assert project.stack_file("prod") == before


def test_an_image_not_pinned_by_digest_is_refused(project: Project) -> None:
    project.deployed("dev", {"imageRef": "localhost:5000/modelship/server:latest", "modelId": MODEL_ID, "metrics": GOOD})
    before = project.stack_file("staging")
    with pytest.raises(PromotionRefused, match="serves 'localhost:5000/modelship/server:latest', which is not pinned by digest"):
        promote("dev", "staging", root=project.root)
    assert project.stack_file("staging") == before


def test_a_promotion_pins_the_digest_and_keeps_the_rest_of_the_file(project: Project) -> None:
    project.deployed("dev", {"imageRef": IMAGE, "modelId": MODEL_ID, "metrics": GOOD})
    before = yaml.safe_load(project.stack_file("staging"))["config"]
    promote("dev", "staging", root=project.root)
    after = yaml.safe_load(project.stack_file("staging"))["config"]
    # A source deployed before tasks existed exports no `task`: its model was the built-in classifier.
    assert after.pop("modelship:promotion") == {"image": IMAGE, "modelId": MODEL_ID, "task": "multiclass", "metrics": GOOD,
                                                 "requireDigest": True}
    before.pop("modelship:promotion")
    assert after == before


def test_reference_mode_follows_the_source_stack_instead(project: Project) -> None:
    project.deployed("dev", {"imageRef": IMAGE, "modelId": MODEL_ID, "metrics": GOOD})
    promote("dev", "staging", reference=True, root=project.root)
    promotion = yaml.safe_load(project.stack_file("staging"))["config"]["modelship:promotion"]
    assert promotion == {"fromStack": "dev", "requireDigest": True}
