"""Subprocess helpers for the model tests (a module of its own: every test directory has a `conftest`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A user's project: loaders for scikit-learn's breast-cancer (binary) and diabetes (regression) data and
# for token ids, builders good and bad; configs take it as their project root.
USER_PROJECT = Path(__file__).resolve().parent / "user_project"
# Few epochs: the tests check plumbing and scikit-learn agreement, not quality.
TASK_CONFIGS = {
    "binary": {"task": "binary", "data": "tasks_data:breast_cancer", "epochs": 5, "export": {"int8": True}},
    "regression": {"task": "regression", "data": "tasks_data:diabetes", "epochs": 20, "learning_rate": 0.01,
                   "export": {"int8": True}},
}


def user_config(raw: dict):
    """`raw` as if read from a config file in the user project: builders and loaders are imported from there."""
    from model import TrainConfig

    return TrainConfig.model_validate(raw).with_root(USER_PROJECT)


def run_python(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python <args>` from the project root, as a developer or the Pulumi program runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def model_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_python("-m", "model", *args, timeout=timeout)


def stdout_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.stdout.strip(), f"no JSON on stdout; rc={proc.returncode}, stderr:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def run_tflite(path: Path, x):
    """A TFLite artifact run the way the server runs it, independently of model/evaluate.py."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]).astype(np.float64)


def run_saved_model(path: Path, x):
    """A Keras-exported SavedModel run through its `serve` endpoint (model/evaluate.py uses the signature)."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return np.asarray(loaded.serve(tf.constant(x))).astype(np.float64)
