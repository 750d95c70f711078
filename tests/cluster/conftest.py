"""Fixtures: the local cluster for the whole session, and a fresh namespace per test."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.cluster.kube import DOWN, Cluster, bring_up, cluster_home, run_script  # noqa: E402


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # A cluster a developer started with `make cluster` stays up after the tests; one the tests started does not.
    started_here = not (cluster_home() / "state" / "run" / "kube-apiserver.pid").exists()
    c, _ = bring_up()
    yield c
    if started_here:
        proc, _ = run_script(DOWN, 120)
        assert proc.returncode == 0, f"cluster/down.sh failed:\n{proc.stderr}"


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    # Pods can't be created before the namespace's default ServiceAccount exists.
    cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=30s")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")
