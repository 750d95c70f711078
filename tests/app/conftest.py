"""Fixtures for the app tests: real store entries from model/, and the real server on a free loopback port."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

from app_server import ROOT, Server, tflite_outputs

sys.path.insert(0, str(ROOT))

# User projects the task tests serve: the README's examples, and two of the tests' own for what the examples
# lack: an input 784 values wide (28x28x1) and int32 token ids.
PROJECTS = {
    "cnn": ROOT / "examples/cnn/train.yaml",
    "breast_cancer": ROOT / "examples/breast_cancer/train.yaml",
    "diabetes": ROOT / "examples/diabetes/train.yaml",
    "wide": Path(__file__).parent / "projects/wide/train.yaml",
    "tokens": Path(__file__).parent / "projects/tokens/train.yaml",
}


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


def _trained(config: Path | None, store: Path, overrides: dict) -> Path:
    """A store entry from the real producer, model/, trained small into the temporary store."""
    from model import Store, trained_entry
    from model.config import load

    return Path(trained_entry(load(config, {**overrides, "export": {"int8": False}}).train, Store(store)))


@pytest.fixture(scope="session")
def entry(store: Path) -> Path:
    """The default model (the MLP on digits, float32 [64] to 10 classes)."""
    return _trained(None, store, {"epochs": 3})


@pytest.fixture(scope="session")
def project_entry(store: Path) -> Callable[[str], Path]:
    """`project_entry("cnn")`: the entry of one of PROJECTS, trained for 2 epochs once per session."""
    return functools.cache(lambda name: _trained(PROJECTS[name], store, {"epochs": 2}))


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)


@pytest.fixture(scope="session")
def reference(entry: Path):
    """The model's own answers: the served TFLite file run directly, and the Keras SavedModel."""

    def keras(rows: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        loaded = tf.saved_model.load(str(entry / "saved_model"))
        return loaded.serve(tf.constant(rows, dtype=tf.float32)).numpy()

    return functools.partial(tflite_outputs, entry), keras


@pytest.fixture(scope="session")
def server(entry: Path) -> Iterator[Server]:
    running = Server(entry)
    yield running
    running.stop()
