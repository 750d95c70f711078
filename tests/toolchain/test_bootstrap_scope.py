"""What `make` bootstraps for a stack, and the progress a long build shows.

`make up STACK=...` runs `toolchain/bootstrap.sh --stack STACK`, which builds the Kubernetes provider and the
cluster's binaries only when `python -m infra.stacks --target STACK` says kubernetes. That a docker stack's
`up` needs no Kubernetes plugin is shown on the real engine by tests/infra/test_engine_hardening.py.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def target(stack: str) -> str:
    done = subprocess.run([sys.executable, "-m", "infra.stacks", "--target", stack], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize(("stack", "expected"), [("dev", "docker"), ("staging", "kubernetes"), ("prod", "kubernetes"),
                                                  ("a-stack-with-no-file", "docker")])
def test_each_stack_bootstraps_for_its_target(stack, expected):
    assert target(stack) == expected


def test_a_stack_file_that_sets_kubernetes_gets_kubernetes(tmp_path):
    from infra.stacks import target as of

    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.mine.yaml").write_text(yaml.safe_dump({"config": {"modelship:target": "kubernetes"}}))
    (tmp_path / "Pulumi.other.yaml").write_text(yaml.safe_dump({"config": {"modelship:model": {"train": True}}}))
    assert (of("mine", tmp_path), of("other", tmp_path)) == ("kubernetes", "docker")


def test_the_makefile_bootstraps_kubernetes_only_where_it_is_used():
    make = (ROOT / "Makefile").read_text()
    rules = {line.split(":")[0]: line.split(":", 1)[1].split() for line in make.splitlines()
             if ":" in line and not line.startswith(("\t", "#", " ", ".")) and "=" not in line.split(":")[0]}
    assert rules["up"] == rules["preview"] == rules["destroy"] == ["bootstrap-stack"]
    assert rules["test"] == rules["cluster"] == ["bootstrap-kubernetes"]
    assert "bootstrap.sh --stack $(STACK)" in make and "bootstrap.sh --kubernetes" in make


def test_a_long_build_shows_what_it_builds_and_for_how_long():
    script = f'. {ROOT}/toolchain/progress.sh; progress "building the thing" sleep 2.5; echo "status $?"'
    begun = time.monotonic()
    done = subprocess.run(["bash", "-c", script], env={"MODELSHIP_PROGRESS_S": "1", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "status 0" and time.monotonic() - begun < 10
    ticks = done.stderr.splitlines()
    assert ticks[:2] == ["    ... building the thing: 0m01s elapsed", "    ... building the thing: 0m02s elapsed"], ticks


def test_a_failing_build_keeps_its_status_and_stops_its_ticker():
    script = f'. {ROOT}/toolchain/progress.sh; progress "failing" bash -c "sleep 1.5; exit 7"; echo "status $?"; sleep 2'
    done = subprocess.run(["bash", "-c", script], env={"MODELSHIP_PROGRESS_S": "1", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "status 7"
    # One tick during the build, none in the 2 s after it.
    assert done.stderr.splitlines() == ["    ... failing: 0m01s elapsed"], done.stderr


def run_lib(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f". {ROOT}/toolchain/lib.sh; {script}"], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "MODELSHIP_PROGRESS_S": "30"})


def test_steps_beside_the_builds_are_joined_and_a_failure_is_named():
    done = run_lib('beside good bash -c "echo fine"; beside bad bash -c "echo broken; exit 3"; join; echo "not reached"')
    assert done.returncode == 1 and "not reached" not in done.stdout
    assert "[good] fine" in done.stderr and "[bad] broken" in done.stderr
    assert "error: bootstrap step(s) failed: bad (" in done.stderr, done.stderr


def test_a_bootstrap_that_stops_early_stops_what_runs_beside(tmp_path):
    marker = tmp_path / "still-running"
    done = run_lib(f'beside slow bash -c "sleep 3; touch {marker}"; sleep 0.5; die "the build failed"')
    assert done.returncode == 1 and "the build failed" in done.stderr
    time.sleep(4)
    assert not marker.exists(), "the step started beside kept running after the bootstrap failed"
