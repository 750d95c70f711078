"""Fixtures for the model tests: one quick training shared by the whole session, in a temporary store.

Tests whose behaviour does not depend on model quality use QUICK (3 epochs); everything that only reads
an entry shares `quick_entry`, so the session trains as few models as it can.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from model import Store, StoreEntry, TrainConfig, trained_entry  # noqa: E402
from model_helpers import TASK_CONFIGS, user_config  # noqa: E402

QUICK = {"epochs": 3, "export": {"int8": True}}


@pytest.fixture(scope="session")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def quick_config() -> TrainConfig:
    return TrainConfig.model_validate(QUICK)


@pytest.fixture(scope="session")
def quick_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "quick.yaml"
    path.write_text(yaml.safe_dump(QUICK))
    return path


@pytest.fixture(scope="session")
def quick_entry(store_root: Path, quick_config: TrainConfig) -> StoreEntry:
    return trained_entry(quick_config, Store(store_root))


@pytest.fixture(scope="session")
def binary_config() -> TrainConfig:
    return user_config(TASK_CONFIGS["binary"])


@pytest.fixture(scope="session")
def regression_config() -> TrainConfig:
    return user_config(TASK_CONFIGS["regression"])


@pytest.fixture(scope="session")
def binary_entry(store_root: Path, binary_config: TrainConfig) -> StoreEntry:
    return trained_entry(binary_config, Store(store_root))


@pytest.fixture(scope="session")
def regression_entry(store_root: Path, regression_config: TrainConfig) -> StoreEntry:
    return trained_entry(regression_config, Store(store_root))
