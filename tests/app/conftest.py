"""Fixtures for the app tests: a real store entry, and the real server on a free loopback port."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from app_server import ROOT, Server

sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def entry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store entry from the real producer, model/, trained small into a temporary store."""
    from model import Store, trained_entry
    from model.config import load

    config = load(None, {"epochs": 3, "export": {"int8": False}}).train
    return Path(trained_entry(config, Store(tmp_path_factory.mktemp("store"))))


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)


@pytest.fixture(scope="session")
def reference(entry: Path):
    """The model's own answers: the served TFLite file run directly, and the Keras SavedModel."""
    from ai_edge_litert.interpreter import Interpreter

    def tflite(rows: np.ndarray) -> np.ndarray:
        interpreter = Interpreter(model_path=str(entry / "model.tflite"))
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, rows.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, rows.astype(np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    def keras(rows: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        loaded = tf.saved_model.load(str(entry / "saved_model"))
        return loaded.serve(tf.constant(rows, dtype=tf.float32)).numpy()

    return tflite, keras


@pytest.fixture(scope="session")
def server(entry: Path) -> Iterator[Server]:
    running = Server(entry)
    yield running
    running.stop()
