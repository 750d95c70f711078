"""The bounded "otherwise optimise" search: overrides tried in order, stopping at the first that passes.

The base config cannot learn (learning rate 1e-6, one epoch) so it fails a modest accuracy gate; the first
search step can. Training is deterministic, so the outcome is too.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model import Store, gated_entry, identify
from model.config import load

SEARCH_CONFIG = {
    "epochs": 1,
    "learning_rate": 1e-6,
    "hidden_layers": [32],
    "search": [{"learning_rate": 0.01, "epochs": 3}, {"epochs": 2}, {"epochs": 4}],
}
THRESHOLDS = {"accuracy": 0.6}


@pytest.fixture(scope="module")
def search_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("search") / "search.yaml"
    path.write_text(yaml.safe_dump(SEARCH_CONFIG))
    return path


@pytest.fixture(scope="module")
def search_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("search-store")


def step_id(path: Path, step: dict) -> str:
    return identify(load(path, step).train)[0]


def test_search_stops_at_the_first_passing_config(search_file: Path, search_store: Path) -> None:
    entry_dir, result = gated_entry(search_file, None, THRESHOLDS, search_store)
    assert result.passed
    assert [a.passed for a in result.attempts] == [False, True]
    assert [a.overrides for a in result.attempts] == [{}, SEARCH_CONFIG["search"][0]]
    base, first, second = (step_id(search_file, s) for s in ({}, *SEARCH_CONFIG["search"][:2]))
    assert [a.model_id for a in result.attempts] == [base, first]
    assert result.model_id == first and Path(entry_dir) == search_store / first
    # Every attempt is recorded in the store, and nothing after the passing one was trained.
    store = Store(search_store)
    assert store.get(base) is not None and store.get(first) is not None
    assert not store.path(second).exists()
    assert "Search, in order:" in result.to_markdown()


def test_search_that_never_passes_returns_the_last_attempt(search_file: Path, search_store: Path) -> None:
    # loss <= 0 is unreachable: every step is tried; the first two are already in the store.
    entry_dir, result = gated_entry(search_file, None, {"loss": 0.0}, search_store)
    assert not result.passed and len(result.attempts) == 4
    assert not any(a.passed for a in result.attempts)
    assert result.model_id == result.attempts[-1].model_id == step_id(search_file, SEARCH_CONFIG["search"][-1])
    assert Path(entry_dir).name == result.model_id


def test_overrides_apply_before_the_search(search_file: Path, search_store: Path) -> None:
    """A stack's overrides (infra's `model.overrides`) change the base; a passing base needs no search."""
    _, result = gated_entry(search_file, {"learning_rate": 0.01, "epochs": 3}, THRESHOLDS, search_store)
    assert result.passed and len(result.attempts) == 1
    assert result.model_id == step_id(search_file, SEARCH_CONFIG["search"][0])  # same config, same model
