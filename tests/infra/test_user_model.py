"""The program with a user's own model project (their builder, loader, task or pre-trained file), under
Pulumi's mocks with real training: a good project is registered like the built-in model; a broken one stops
the preview with the user's file and line, registers nothing and leaves nothing in the store.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from infra.gate import GateFailed
from tests.infra.harness import Run, run_program, stack_file

LOADER = """\
import numpy as np


def load():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 4)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=240)
    return x[:200], y[:200], x[200:], y[200:]
"""
BUILDER = """\
import keras


def build(params, spec):
    inputs = keras.Input(spec.input_shape, name="measurements")
    hidden = keras.layers.Dense(params["units"], activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="value")(hidden))
"""


def project(root: Path, files: dict[str, str], config: str) -> Path:
    """A user's project: `my_models/` beside its training config."""
    (root / "my_models").mkdir(parents=True)
    (root / "my_models" / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    (root / "train.yaml").write_text(textwrap.dedent(config))
    return root / "train.yaml"


REGRESSION = """\
task: regression
builder: my_models.model:build
data: my_models.data:load
params: {units: 8}
epochs: 3
export: {int8: false}
"""


def stack(train_config: Path, store: Path, **thresholds: float) -> dict:
    cfg = stack_file("dev")
    cfg["model"] = {"storeDir": str(store), "trainConfig": str(train_config), "search": False}
    cfg["gate"] = {"thresholds": thresholds or {"mae": 100.0}}
    return cfg


def test_a_user_regression_model_is_registered_with_its_task_and_input(tmp_path):
    config = project(tmp_path / "user", {"my_models/data.py": LOADER, "my_models/model.py": BUILDER}, REGRESSION)
    run = run_program("dev", stack(config, tmp_path / "store"))
    assert run.outputs["task"] == "regression"
    assert run.outputs["gate"]["passed"] is True and "mae" in run.outputs["metrics"] and "accuracy" not in run.outputs["metrics"]
    # The printed curl speaks the model's own input name and shape.
    assert '"name":"measurements","shape":[1,4]' in run.outputs["curl"]
    assert run.of_type("docker-build:index:Image")


BROKEN = {
    "a syntax error in the builder's module": (
        {"my_models/data.py": LOADER, "my_models/model.py": "import keras\n\ndef build(params, spec)\n    return None\n"},
        "my_models/model.py:3",
    ),
    "a builder that returns no Keras model": (
        {"my_models/data.py": LOADER, "my_models/model.py": "def build(params, spec):\n    return 'a model'\n"},
        "my_models/model.py:1",
    ),
    "an import error inside the user's module": (
        {"my_models/data.py": LOADER, "my_models/model.py": "import keras\nimport not_a_module_anyone_has\n"},
        "my_models/model.py:2",
    ),
    "a loader whose arrays disagree in length": (
        {"my_models/data.py": "import numpy as np\n\n\ndef load():\n    x = np.zeros((10, 4), 'float32')\n"
                              "    return x, np.zeros(9), x, np.zeros(10)\n",
         "my_models/model.py": BUILDER},
        "my_models/data.py:4",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_user_code_stops_the_preview_naming_the_file_and_line_and_registers_nothing(tmp_path, case):
    files, where = BROKEN[case]
    config = project(tmp_path / "user", files, REGRESSION)
    store = tmp_path / "store"
    run = Run()
    with pytest.raises(GateFailed) as err:
        run_program("dev", stack(config, store), run=run)
    assert where in str(err.value), str(err.value)
    assert run.resources == []
    assert not [p for p in store.glob("*") if len(p.name) == 64], "a failed build must leave no store entry"


def test_labels_outside_the_classes_name_the_loader(tmp_path):
    loader = ("import numpy as np\n\n\ndef load():\n    x = np.zeros((10, 4), 'float32')\n"
              "    return x, np.full(10, 3), x, np.zeros(10)\n")
    config = project(tmp_path / "user", {"my_models/data.py": loader, "my_models/model.py": BUILDER},
                     REGRESSION.replace("task: regression", "task: binary"))
    with pytest.raises(GateFailed, match="my_models/data.py"):
        run_program("dev", stack(config, tmp_path / "store", accuracy=0.5))


def test_an_artifact_that_cannot_be_loaded_is_named(tmp_path):
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "model.keras").write_bytes(b"not a zip archive")
    config = project(tmp_path / "user", {"my_models/data.py": LOADER},
                     "task: regression\nartifact: model.keras\ndata: my_models.data:load\n")
    run = Run()
    with pytest.raises(GateFailed, match="model.keras") as err:
        run_program("dev", stack(config, tmp_path / "store"), run=run)
    assert run.resources == [] and "nothing was registered" in str(err.value)
