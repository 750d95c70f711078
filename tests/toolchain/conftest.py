"""The toolchain tests' shared fixture: the machine's Docker Engine, or a failure saying how to start it."""
from __future__ import annotations

from typing import Iterator

import docker
import pytest


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as err:
        pytest.fail(f"no Docker Engine answers ({err}): run `make bootstrap` (toolchain/docker.sh starts dockerd)")
    yield client
    client.close()
