"""The Docker Engine that toolchain/docker.sh provides answers, and the script leaves a running engine alone."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIX = "run `make bootstrap` (toolchain/docker.sh installs and starts the Docker Engine)"


def test_engine_answers() -> None:
    try:
        done = subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.fail(f"no `docker` command on PATH: {FIX}")
    assert done.returncode == 0, f"`docker info` failed ({done.stderr.strip()}): {FIX}"
    info = json.loads(done.stdout)
    assert info["ServerVersion"], "the engine reported no version"
    assert info["OSType"] == "linux"
    # The base images are imported into the engine's own store: a storage driver must be working.
    assert info["Driver"], "the engine reported no storage driver"


def test_docker_sh_keeps_a_running_engine() -> None:
    pid_before = Path("/var/run/docker.pid").read_text().strip() if Path("/var/run/docker.pid").exists() else None
    done = subprocess.run([str(ROOT / "toolchain" / "docker.sh")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "docker engine answers" in done.stderr
    if pid_before is not None:
        assert Path("/var/run/docker.pid").read_text().strip() == pid_before, "docker.sh started a second dockerd"
