"""Fixtures that more than one folder of tests uses: the local Kubernetes cluster, for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.kube import DOWN, Cluster, bring_up, cluster_running, run_script


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # A cluster a developer started with `make cluster` stays up after the tests; one the tests started does not.
    started_here = not cluster_running()
    c, _ = bring_up()
    yield c
    if started_here:
        proc, _ = run_script(DOWN, 120)
        assert proc.returncode == 0, f"cluster/down.sh failed:\n{proc.stderr}"
