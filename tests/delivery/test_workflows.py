"""The CI workflows a user copies: they parse, call only make targets that exist, and their jobs run here,
step by step, in fresh clones: the PR check's stack list and preview, and the delivery path they make together
(merge to main deploys dev, the promotion workflow pins dev's digest for staging, merging that deploys it)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import run_workflow
from infra.stacks import previewable
from tests.cluster.kube import Cluster
from tests.delivery.clone import destroy, dev_ports_taken, fresh_clone, terminal_env
from tests.infra.registry import local_registry

ROOT = Path(__file__).resolve().parents[2]

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# What each workflow's expressions are given on GitHub: one value per matrix axis, dispatch input and secret.
CONTEXT = {
    "matrix.stack": "dev",
    "inputs.from": "dev",
    "inputs.to": "staging",
    "github.event.pull_request.number": "1",
    "github.base_ref": "main",
    "vars.PULUMI_BACKEND_URL": "file://state",
    "secrets.PULUMI_CONFIG_PASSPHRASE": "passphrase",
    "secrets.KUBECONFIG": "apiVersion: v1",
}
JOB_TIMEOUT_S = 1800
PROMOTED = ("staging", "prod")
SERVER = "modelship-server"


def run_job(clone: Path, workflow: str, job: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One job of the clone's own workflow file, through toolchain/run_workflow.py, from a new terminal."""
    return subprocess.run(
        [sys.executable, str(ROOT / "toolchain" / "run_workflow.py"), str(clone / ".github" / "workflows" / workflow),
         "--job", job, *args, "--cwd", str(clone)],
        env=terminal_env(), capture_output=True, text=True, timeout=JOB_TIMEOUT_S,
    )


def job_failed(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}:\n{proc.stderr[-4000:]}\n{proc.stdout[-3000:]}"


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_there_are_the_three_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"pr.yml", "deploy.yml", "promote.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_calls_an_existing_make_target(path: Path) -> None:
    """The workflows do what a developer does locally: each `run:` step is a make target, except the runner's
    own set-up (a step that only writes `$GITHUB_ENV`, such as the cluster credentials from a secret)."""
    workflow = run_workflow.load(path)
    targets = make_targets()
    for job in workflow["jobs"]:
        for step in run_workflow.plan(workflow, job, CONTEXT):
            if step.command is None:
                continue
            called = re.findall(r"\bmake(?: -s)? ([a-z][a-z-]*)", step.command)
            if not called:
                assert "$GITHUB_ENV" in step.command and "make" not in step.command, (
                    f"{path.name}, job {job}, step '{step.name}' runs no make target: {step.command}"
                )
            missing = sorted(set(called) - targets)
            assert not missing, f"{path.name}, job {job}, step '{step.name}' calls make targets the Makefile lacks: {missing}"


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


def test_a_step_sees_what_earlier_steps_set_and_the_job_prints_its_outputs(tmp_path: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text(yaml.safe_dump({"jobs": {"j": {"steps": [
        {"run": 'echo "GREETING=hello" >> "$GITHUB_ENV"'},
        {"run": 'echo "said=$GREETING $WHO" >> "$GITHUB_OUTPUT"', "env": {"WHO": "${{ secrets.WHO }}"}},
    ]}}}))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "toolchain" / "run_workflow.py"), str(path), "--job", "j", "--var", "secrets.WHO=you",
         "--cwd", str(tmp_path)], capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--- output said=hello you" in proc.stderr


def test_only_stacks_with_something_to_deploy_are_previewed(tmp_path: Path) -> None:
    assert previewable(ROOT) == ["dev"], "as committed, staging and prod have no pinned digest yet"
    for stack in ("dev", "staging", "prod"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text((ROOT / f"Pulumi.{stack}.yaml").read_text())
    prod = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())
    prod["config"]["modelship:promotion"]["image"] = "localhost:5001/modelship/server@sha256:" + "a" * 64
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(prod))
    assert previewable(tmp_path) == ["dev", "prod"]


def test_the_pr_stacks_job_hands_the_preview_matrix_its_stacks() -> None:
    proc = run_job(ROOT, "pr.yml", "stacks")
    assert proc.returncode == 0, job_failed(proc)
    listed = re.search(r"^--- output stacks=(.*)$", proc.stderr, re.M)
    assert listed and json.loads(listed.group(1)) == ["dev"], proc.stderr[-2000:]


def test_the_pr_preview_job_runs_in_a_clean_clone(tmp_path: Path) -> None:
    """The PR check's preview job, step by step, in a fresh clone on its own local backend."""
    clone = fresh_clone(tmp_path)
    result = run_job(clone, "pr.yml", "preview", "--matrix", "stack=dev")
    assert result.returncode == 0, job_failed(result)
    assert "a hosted-runner action, not run here" in result.stderr
    gate = (clone / "gate.md").read_text()
    assert "gate passed" in gate and "| accuracy |" in gate
    preview = (clone / "preview.txt").read_text()
    assert "modelship:infra:ModelImage" in preview, preview[-3000:]
    assert "Policies:" in preview or "policy" in preview.lower(), preview[-3000:]


PROD_REGISTRY_PORT = 5001  # Pulumi.prod.yaml's registry: another registry than dev's and staging's


@pytest.fixture
def prod_registry() -> Iterator[str]:
    """Prod's own registry, as an operator runs it outside any stack: promotion copies the image into it."""
    with local_registry(PROD_REGISTRY_PORT) as server:
        yield server


@pytest.fixture
def delivery_clone(tmp_path: Path, cluster: Cluster, prod_registry: str) -> Iterator[Path]:
    """A clean clone whose operator has done the one-time set-up: the promoted stacks with their registry passwords."""
    taken = dev_ports_taken()
    if taken:
        pytest.fail(taken, pytrace=False)
    clone = fresh_clone(tmp_path)
    setup = " && ".join(
        ["source toolchain/env.sh"]
        + [f"pulumi stack init {stack} && pulumi config set --secret --path modelship:registry.password local-registry "
           f"--stack {stack}" for stack in PROMOTED]
        + ["git commit -qam 'registry passwords'"]
    )
    subprocess.run(["bash", "-c", setup], cwd=clone, env=terminal_env(), check=True, capture_output=True)
    yield clone
    destroy(clone, {**terminal_env(), "KUBECONFIG": str(cluster.kubeconfig)}, *PROMOTED, "dev")


def stack_image(clone: Path, stack: str) -> str:
    proc = subprocess.run(["bash", "-c", f"source toolchain/env.sh && pulumi stack output imageRef --stack {stack}"],
                          cwd=clone, env=terminal_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def promote_and_merge(clone: Path, source: str, target: str) -> str:
    """The promotion workflow, then what merging its PR puts on main; returns the pinned image."""
    promoted = run_job(clone, "promote.yml", "promote", "--input", f"from={source}", "--input", f"to={target}")
    assert promoted.returncode == 0, job_failed(promoted)
    assert "--- Open the PR: a hosted-runner action, not run here" in promoted.stderr
    subprocess.run(["git", "-C", str(clone), "commit", "-qam", f"Promote {source} to {target}"], check=True)
    return yaml.safe_load((clone / f"Pulumi.{target}.yaml").read_text())["config"]["modelship:promotion"]["image"]


def deploy_promoted(clone: Path, cluster: Cluster) -> dict[str, subprocess.CompletedProcess[str]]:
    """The deploy workflow's job for each promoted stack, after a push to main."""
    kubeconfig = ("--var", f"secrets.KUBECONFIG={cluster.kubeconfig.read_text()}")
    runs = {stack: run_job(clone, "deploy.yml", "promoted", "--matrix", f"stack={stack}", *kubeconfig) for stack in PROMOTED}
    for stack, proc in runs.items():
        assert proc.returncode == 0, f"{stack}: {job_failed(proc)}"
    return runs


def test_merges_deploy_dev_then_each_promotion_moves_the_same_digest(delivery_clone: Path, cluster: Cluster) -> None:
    clone = delivery_clone
    merged = run_job(clone, "deploy.yml", "dev")
    assert merged.returncode == 0, job_failed(merged)
    dev_image = stack_image(clone, "dev")
    digest = dev_image.split("@", 1)[1]

    # dev -> staging: same registry, so the very reference dev serves.
    assert promote_and_merge(clone, "dev", "staging") == dev_image
    runs = deploy_promoted(clone, cluster)
    assert stack_image(clone, "staging") == dev_image and set(cluster.pods_by_image("modelship-staging", SERVER)) == {dev_image}
    assert "Updating (prod)" not in runs["prod"].stdout, "prod deployed on a merge that did not touch Pulumi.prod.yaml"

    # staging -> prod: prod's registry is another one; promotion copies the image, and the digest is the same.
    prod_image = promote_and_merge(clone, "staging", "prod")
    assert prod_image.startswith(f"localhost:{PROD_REGISTRY_PORT}/") and prod_image.endswith(f"@{digest}")
    with urllib.request.urlopen(urllib.request.Request(
        f"http://localhost:{PROD_REGISTRY_PORT}/v2/modelship/server/manifests/{digest}", method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"},
    ), timeout=10) as response:
        assert response.headers["Docker-Content-Digest"] == digest
    runs = deploy_promoted(clone, cluster)
    assert stack_image(clone, "prod") == prod_image and set(cluster.pods_by_image("modelship-prod", SERVER)) == {prod_image}
    assert "Updating (staging)" not in runs["staging"].stdout, "staging redeployed on a merge that touched only prod"
