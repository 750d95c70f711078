"""The README walkthrough, run as a user runs it: every command line of it, in order, in a fresh clone.

Dev comes up on Docker, staging on the local cluster (`make cluster`), both on the clone's own local backend.
Each step's output must contain the README's excerpts, and each step is checked for what it must have done
(what serves, which digest the cluster runs, what the failed gate left alone). The wall time of each step is
printed at the end and written to `.modelship/walkthrough-times.md`.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kube import Cluster, cluster_running, eventually
from tests.delivery.clone import destroy, dev_ports_taken, fresh_clone, terminal_env
from tests.delivery.readme_steps import Step, missing_excerpts, walkthrough

ROOT = Path(__file__).resolve().parents[2]

STEPS = {step.number: step for step in walkthrough(ROOT / "README.md")}
STAGING_NAMESPACE = "modelship-staging"
SERVER = "modelship-server"
# A line may build what the machine lacks first (the cluster binaries: about half an hour, cold).
LINE_TIMEOUT_S = 3600
DIGEST = re.compile(r"^image:\s+(\S+@sha256:[0-9a-f]{64})$", re.M)
MODEL_INFO = re.compile(r'^modelship_model_info\{.*model_id="([0-9a-f]{64})"', re.M)
DEV_ENDPOINT = "http://127.0.0.1:8080"
# Pulumi.staging.yaml's NodePort, which the local cluster's nodes serve on loopback.
STAGING_ENDPOINT = "http://127.0.0.1:30080"


class Walk:
    """Runs README lines one by one in the clone, carrying the environment from each line to the next, as
    one terminal would (`export`, `source toolchain/env.sh`)."""

    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.clone, self.env = clone, env
        self.outputs: dict[int, str] = {}
        self.seconds: dict[int, float] = {}
        self.failed_at: int | None = None
        self.facts: dict[str, Any] = {}

    def run(self, number: int) -> str:
        if self.failed_at is not None:
            pytest.fail(f"step {self.failed_at} of the walkthrough failed, so step {number} can't run", pytrace=False)
        step = STEPS[number]
        self.failed_at = number  # until it has passed every check
        start, output = time.monotonic(), []
        for command in step.commands:
            proc = self._line(command.line)
            output.append(f"$ {command.line}\n{proc.stdout}")
            failed = proc.returncode != 0
            assert failed == command.must_fail, (
                f"step {number} ({step.title}): `{command.line}` exited {proc.returncode}"
                f"{' but the README says it fails' if command.must_fail else ''}:\n{proc.stdout[-5000:]}"
            )
        self.seconds[number] = time.monotonic() - start
        self.outputs[number] = "\n".join(output)
        missing = missing_excerpts(step.expected, self.outputs[number])
        assert not missing, (
            f"step {number} ({step.title}) did not print what the README shows: {missing}\n"
            f"it printed:\n{self.outputs[number][-6000:]}"
        )
        return self.outputs[number]

    def passed(self) -> None:
        self.failed_at = None

    def _line(self, line: str) -> subprocess.CompletedProcess[str]:
        env_out = self.clone.parent / "env.out"
        script = f'{line}\n__rc=$?\nenv -0 > "{env_out}"\nexit $__rc\n'
        proc = subprocess.run(
            ["bash", "-c", script], cwd=self.clone, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=LINE_TIMEOUT_S,
        )
        if env_out.exists():
            self.env = dict(pair.split("=", 1) for pair in env_out.read_text().split("\0") if "=" in pair)
        return proc

    def helper(self, *args: str) -> str:
        """A command that is not part of the walkthrough, for checks: run in the walkthrough's environment."""
        proc = subprocess.run(list(args), cwd=self.clone, env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{' '.join(args)} failed: {proc.stderr}"
        return proc.stdout

    def stack_file(self, stack: str) -> dict[str, Any]:
        return yaml.safe_load((self.clone / f"Pulumi.{stack}.yaml").read_text())["config"]

    def cluster(self) -> Cluster:
        return Cluster(Path(self.env["KUBECONFIG"]))


def served_model_id(endpoint: str = DEV_ENDPOINT) -> str:
    with urllib.request.urlopen(f"{endpoint}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    found = MODEL_INFO.search(metrics)
    assert found, f"{endpoint}/metrics has no modelship_model_info"
    return found.group(1)


def printed_model_ids(output: str) -> list[str]:
    """The model ids of the `modelship_model_info` lines a step printed, in order."""
    return MODEL_INFO.findall(output)


def image_of(output: str) -> str:
    digests = DIGEST.findall(output)
    assert digests, f"no `image: ref@digest` line in:\n{output[-3000:]}"
    return digests[-1]


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    taken = dev_ports_taken()
    if taken:
        pytest.fail(taken, pytrace=False)
    clone = fresh_clone(tmp_path_factory.mktemp("walkthrough"))
    env = terminal_env()
    cluster_was_up = cluster_running()
    w = Walk(clone, env)
    yield w
    # Whatever failed above, leave neither stack's resources behind (step 7 destroyed them when it ran).
    if 7 not in w.seconds:
        destroy(clone, w.env, "staging", "dev")
    if not cluster_was_up:
        subprocess.run(["bash", str(clone / "cluster" / "down.sh")], env=w.env, capture_output=True)
    report = "\n".join(
        ["| step | wall time |", "|---|---|"]
        + [f"| {n}. {STEPS[n].title} | {s:.1f} s |" for n, s in sorted(w.seconds.items())]
        + [f"| all | {sum(w.seconds.values()):.1f} s |"]
    )
    print(f"\nREADME walkthrough, wall time per step:\n{report}")
    (ROOT / ".modelship").mkdir(exist_ok=True)
    (ROOT / ".modelship" / "walkthrough-times.md").write_text(report + "\n")


def test_the_readme_walkthrough_is_the_one_checked_here() -> None:
    assert [(s.number, s.title) for s in STEPS.values()] == [
        (1, "Bring up dev"),
        (2, "Call the endpoint"),
        (3, "Promote to staging"),
        (4, "Change a hyper-parameter"),
        (5, "Break the model on purpose"),
        (6, "Promote the new model, then roll back"),
        (7, "Tear down"),
    ]
    for step in STEPS.values():
        assert step.commands and step.expected, f"step {step.number} has no commands or no expected output"


def staging_runs(walk: Walk, image: str) -> None:
    """Every live server pod on staging runs `image` and is Ready. The `up` returned once they all were; a pod
    may still turn not-Ready for a moment after (CI saw one, once), so readiness gets a minute, and a failure
    says what became of each pod."""
    cluster = walk.cluster()

    def all_ready() -> bool:
        images = cluster.pods_by_image(STAGING_NAMESPACE, SERVER)
        assert set(images) == {image}, f"staging runs {images}, not {image}"
        return all(images[image])

    try:
        eventually(all_ready, "every staging server pod Ready", timeout=60)
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n{cluster.pod_states(STAGING_NAMESPACE, SERVER)}") from None


def test_1_bring_up_dev(walk: Walk) -> None:
    output = walk.run(1)
    walk.facts["first_image"] = image_of(output)
    walk.facts["first_model"] = served_model_id()
    assert walk.facts["first_model"][:12] in walk.facts["first_image"], "the image is not tagged with the served model"
    walk.passed()


def test_2_call_the_endpoint(walk: Walk) -> None:
    output = walk.run(2)
    body = output.split("\n", 1)[1]
    predictions = json.loads(body[body.index("{"):body.rindex("}") + 1])["predictions"][0]
    assert len(predictions) == 10 and abs(sum(predictions) - 1) < 1e-3
    assert max(range(10), key=predictions.__getitem__) == 0, f"the handwritten 0 was read as {predictions}"
    walk.passed()


def test_3_promote_to_staging(walk: Walk) -> None:
    output = walk.run(3)
    assert Path(walk.env.get("KUBECONFIG", "")).is_file(), "`make -s cluster` printed no kubeconfig path"
    first = walk.facts["first_image"]
    promotion = walk.stack_file("staging")["modelship:promotion"]
    assert (promotion["image"], promotion["modelId"]) == (first, walk.facts["first_model"])
    assert image_of(output) == first
    assert "promote dev to staging" in walk.helper("git", "log", "-1", "--format=%s")
    staging_runs(walk, first)
    # The staging endpoint answers from this machine, with the promoted model.
    assert printed_model_ids(output) == [walk.facts["first_model"]], "staging's /metrics did not name the promoted model"
    assert served_model_id(STAGING_ENDPOINT) == walk.facts["first_model"]
    walk.passed()


def test_4_change_a_hyper_parameter(walk: Walk) -> None:
    output = walk.run(4)
    preview = output.split("$ make up", 1)[0]
    changed = set(re.findall(r"^\s*(?:~|\+-|\+\+|--|\+|-)\s+\S+:\S+\s+(\S+)\s+(?:update|replace|create|delete)", preview, re.M))
    # The model's id is in the image, the server's labels and the alert rules; the registry, the reverse proxy and
    # Alertmanager stay.
    assert {"image", "server-0"} <= changed <= {"image", "server-image", "server-0", "monitoring-prometheus"}, changed
    second = image_of(output)
    assert second != walk.facts["first_image"]
    walk.facts["second_image"], walk.facts["second_model"] = second, served_model_id()
    assert walk.facts["second_model"] != walk.facts["first_model"]
    assert walk.facts["second_model"][:12] in second
    walk.passed()


def test_5_break_the_model_on_purpose(walk: Walk) -> None:
    output = walk.run(5)
    gate = re.search(r"gate failed: tflite model ([0-9a-f]{12})", output)
    assert gate and gate.group(1) != walk.facts["second_model"][:12]
    # search: false, so the one-epoch model was the only one tried (a search lists its attempts).
    assert "Search, in order:" not in output, "the gate searched although modelship:model.search is false"
    # Nothing registered: the same model serves and the stack still records step 4's image.
    assert served_model_id() == walk.facts["second_model"]
    assert walk.helper("pulumi", "stack", "output", "imageRef", "--stack", "dev").strip() == walk.facts["second_image"]
    assert walk.helper("git", "status", "--porcelain", "Pulumi.dev.yaml") == "", "Pulumi.dev.yaml was not restored"
    walk.passed()


def test_6_promote_the_new_model_then_roll_back(walk: Walk) -> None:
    output = walk.run(6)
    first, second = walk.facts["first_image"], walk.facts["second_image"]
    promoted, rolled_back = output.split("$ git revert", 1)
    assert image_of(promoted) == second, "the promotion did not deploy step 4's image"
    assert image_of(rolled_back) == first, "the rollback did not deploy step 1's image"
    # What the staging endpoint answered with after each up: the promoted model, then the previous one again.
    assert printed_model_ids(promoted) == [walk.facts["second_model"]], "staging did not serve the promoted model"
    assert printed_model_ids(rolled_back) == [walk.facts["first_model"]], "staging did not serve the rolled-back model"
    assert served_model_id(STAGING_ENDPOINT) == walk.facts["first_model"]
    assert walk.stack_file("staging")["modelship:promotion"]["image"] == first
    staging_runs(walk, first)
    walk.passed()


def test_7_tear_down(walk: Walk) -> None:
    walk.run(7)
    label = "label=ai.modelship.stack=modelship/dev"
    assert walk.helper("docker", "ps", "-aq", "--filter", label) == "", "dev's containers outlived the destroy"
    left = walk.cluster().kubectl("get", "deployment", SERVER, "-n", STAGING_NAMESPACE, check=False)
    assert left.returncode != 0 and "NotFound" in left.stderr, "staging's Deployment outlived the destroy"
    walk.passed()
