"""Fixtures: a fresh namespace per test, on the session's local cluster (tests/conftest.py), and a small web
server image the nodes pull from a real registry on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.kube import Cluster, web_image
from tests.infra.registry import free_port, local_registry


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    # Pods can't be created before the namespace's default ServiceAccount exists.
    cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=30s")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="session")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`localhost:<port>/modelship-test/web:test@sha256:...`: busybox's httpd serving its pod's name on :8080,
    built here and pushed to a registry that lives for the session."""
    with local_registry(free_port()) as server:
        yield web_image(server, Path(tmp_path_factory.mktemp("web")))
