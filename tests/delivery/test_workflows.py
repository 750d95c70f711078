"""The CI workflows a user copies: they parse, call only make targets that exist, and their steps run here."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "toolchain"))
import run_workflow  # noqa: E402

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# What each workflow's expressions are given on GitHub: one value per matrix axis and dispatch input.
CONTEXT = {
    "matrix.stack": "dev",
    "inputs.from": "dev",
    "inputs.to": "staging",
    "github.event.pull_request.number": "1",
    "github.base_ref": "main",
    "vars.PULUMI_BACKEND_URL": "file://state",
    "secrets.PULUMI_CONFIG_PASSPHRASE": "passphrase",
}


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_there_are_the_three_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"pr.yml", "deploy.yml", "promote.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_calls_an_existing_make_target(path: Path) -> None:
    workflow = run_workflow.load(path)
    targets = make_targets()
    called = []
    for job in workflow["jobs"]:
        for name, command in run_workflow.plan(workflow, job, CONTEXT):
            if command is None:
                continue
            called += re.findall(r"\bmake ([a-z][a-z-]*)", command)
    assert called, f"{path.name} runs no make target"
    missing = sorted(set(called) - targets)
    assert not missing, f"{path.name} calls make targets the Makefile lacks: {missing}"


def test_an_unknown_expression_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text("jobs:\n  j:\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    with pytest.raises(SystemExit, match="matrix.nope"):
        run_workflow.plan(run_workflow.load(path), "j", {})


def test_a_failing_step_stops_the_job(tmp_path: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text(
        "jobs:\n  j:\n    steps:\n      - uses: actions/checkout@v4\n      - run: exit 3\n"
        "      - run: touch after\n"
    )
    code = run_workflow.run(run_workflow.plan(run_workflow.load(path), "j", {}), tmp_path, dict(os.environ))
    assert code == 3
    assert not (tmp_path / "after").exists()


def test_the_pr_preview_job_runs_in_a_clean_clone(tmp_path: Path) -> None:
    """The PR check's preview job, step by step, in a fresh clone on its own local backend."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # The clone shares the project's virtualenv and model store (content-addressed, so sharing is safe);
    # its Pulumi state is its own.
    os.symlink(ROOT / "venv", clone / "venv")
    (clone / ".modelship").mkdir()
    os.symlink(ROOT / ".modelship" / "store", clone / ".modelship" / "store")
    # As on a hosted runner: no Pulumi settings inherited from this process (other tests' backends and
    # passphrases); the clone's toolchain/env.sh sets its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "toolchain" / "run_workflow.py"), str(clone / ".github/workflows/pr.yml"),
         "--job", "preview", "--matrix", "stack=dev", "--cwd", str(clone)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    assert "a hosted-runner action, not run here" in result.stderr
    gate = (clone / "gate.md").read_text()
    assert "gate passed" in gate and "| accuracy |" in gate
    preview = (clone / "preview.txt").read_text()
    assert "modelship:infra:ModelImage" in preview, preview[-3000:]
    assert "Policies:" in preview or "policy" in preview.lower(), preview[-3000:]
