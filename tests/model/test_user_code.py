"""The user's own code and data: config keys, the project root, the model id, and errors at the user's line.

Every project here is written into tmp_path as a user would lay it out: `train.yaml` beside a package.
The loaders are numpy-only and tiny; only the builder-return test imports Keras.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from model.pipeline import identify
from model.config import REPO_ROOT, TrainConfigError, TrainConfig, load
from model.user import UserCodeError, build_user_model, code_digest, load_callable
from model_helpers import ROOT, run_python

LOADER = """\
import numpy as np


def load(params):
    rng = np.random.default_rng(int(params.get("seed", 0)))
    x = rng.normal(size=(60, 4, 3)).astype(np.float32)
    y = (np.arange(60) % 3).astype(np.int64)
    return {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:],
            "class_names": ["a", "b", "c"]}
"""
BUILDER = """\
import keras


def build(params, spec):
    inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(spec.n_classes, activation="softmax")(x))
"""


def project(root: Path, files: dict[str, str], config: dict[str, Any] | None = None) -> Path:
    """A user project: its files and its train.yaml (the builder/loader package `pkg` unless told otherwise)."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    cfg = config if config is not None else {"builder": "pkg.model:build", "data": "pkg.data:load"}
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.yaml").write_text(yaml.safe_dump(cfg))
    return root / "train.yaml"


def user_project(root: Path, config: dict[str, Any] | None = None, **files: str) -> Path:
    """The standard good project, with some files replaced (keyword `pkg_data` is `pkg/data.py`)."""
    base = {"pkg/__init__.py": "", "pkg/data.py": LOADER, "pkg/model.py": BUILDER}
    base.update({k.replace("_", "/", 1) + ".py": v for k, v in files.items()})
    return project(root, base, config)


def model_id_of(config: Path, overrides: dict[str, Any] | None = None) -> str:
    return identify(load(config, overrides).train)[0]


def user_error(config: Path | TrainConfig) -> str:
    train = config if isinstance(config, TrainConfig) else load(config).train
    with pytest.raises(UserCodeError) as caught:
        identify(train)
    return str(caught.value)


def starts_at(message: str, path: Path, line: int) -> None:
    assert message.startswith(f"{path.resolve()}:{line}: "), message


# --- config ---------------------------------------------------------------------------------------------

def test_data_shorthand_is_a_loader_named_by_its_reference(tmp_path: Path) -> None:
    cfg = load(project(tmp_path, {}, {"data": "pkg.data:load", "task": "binary"})).train
    assert cfg.data.loader == "pkg.data:load" and cfg.data.name == "pkg.data:load" and cfg.task == "binary"
    assert cfg.data.val_fraction == 0.1  # the rest of the section keeps its defaults
    named = load({"data": {"loader": "pkg.data:load", "name": "mine"}}).train
    assert named.data.name == "mine"


def test_new_keys_have_the_contract_defaults() -> None:
    cfg = TrainConfig()
    assert (cfg.task, cfg.builder, cfg.params, cfg.artifact, cfg.data.loader) == ("multiclass", None, {}, None, None)
    assert (cfg.monitor.features, cfg.monitor.bins) == (10, 10)
    keys = json.loads(cfg.canonical_json())
    assert {"task", "builder", "params", "artifact", "monitor"} <= set(keys) and "loader" in keys["data"]


@pytest.mark.parametrize("raw, fragment", [
    ({"builder": "pkg.model"}, "builder: Value error, 'pkg.model' is not 'module:function'"),
    ({"data": "pkg/data.py:load"}, "data.loader: Value error, 'pkg/data.py:load' is not 'module:function'"),
    ({"builder": "pkg.model:build", "artifact": "model.keras"}, "artifact and builder are exclusive"),
    ({"data": {"loader": "pkg.data:load", "path": "d.npz"}}, "set data.loader or data.path, not both"),
    ({"task": "regression", "data": {"n_classes": 3}}, "task regression has targets, not classes"),
    ({"task": "binary", "data": {"n_classes": 3}}, "task binary has two classes"),
    ({"task": "ranking"}, "task: Input should be 'multiclass', 'binary' or 'regression'"),
    ({"monitor": {"bins": 1}}, "monitor.bins: Input should be greater than or equal to 2"),
    ({"monitor": {"features": 0}}, "monitor.features: Input should be greater than 0"),
    ({"monitor": {"series": 3}}, "monitor.series: unknown key"),
    ({"data": {"loder": "pkg.data:load"}}, "data.loder: unknown key"),
])
def test_bad_user_keys_are_named(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TrainConfigError) as caught:
        load(raw)
    assert fragment in str(caught.value), str(caught.value)


def test_builder_and_artifact_ignore_the_built_in_model_keys() -> None:
    cfg = load({"builder": "pkg.model:build", "hidden_layers": [8], "dropout": 0.2}).train
    assert cfg.builder == "pkg.model:build" and cfg.hidden_layers == [8]
    assert load({"artifact": "m.keras", "epochs": 3}).train.artifact == "m.keras"


def test_the_config_files_directory_is_the_root(tmp_path: Path) -> None:
    config = project(tmp_path / "proj", {}, {"artifact": "models/m.keras", "data": {"path": "/abs/d.npz"}})
    cfg = load(config).train
    assert cfg.root == (tmp_path / "proj").resolve()
    assert cfg.resolve(cfg.artifact) == (tmp_path / "proj" / "models" / "m.keras").resolve()
    assert cfg.resolve(cfg.data.path) == Path("/abs/d.npz")
    # No machine path in what the model id hashes or report.json records.
    assert str(tmp_path) not in cfg.canonical_json() and str(tmp_path) not in cfg.model_dump_json()
    # Overrides and search steps keep the file's root; a mapping or the default config has the repository's.
    assert load(config, {"epochs": 2}).train.root == cfg.root
    assert load({"epochs": 2}).train.root == load(None).train.root == REPO_ROOT
    assert load(cfg).train.root == cfg.root and cfg.model_copy(update={"epochs": 3}).root == cfg.root


def test_a_relative_data_path_is_under_the_root_and_its_source_is_portable(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", x_train=rng.normal(size=(30, 5)), y_train=np.arange(30) % 2,
             x_test=rng.normal(size=(10, 5)), y_test=np.arange(10) % 2)
    config = project(tmp_path, {}, {"task": "binary", "data": {"path": "data/d.npz", "name": "d"}})
    _, data = identify(load(config).train)
    assert data.source == "data/d.npz" and data.task == "binary" and data.class_names == ["0", "1"]
    _, digits = identify(TrainConfig())
    assert digits.source == "sklearn:digits"


# --- loaders --------------------------------------------------------------------------------------------

def test_loader_data_keeps_its_shape_and_gets_params(tmp_path: Path) -> None:
    cfg = load(user_project(tmp_path, {"data": "pkg.data:load", "params": {"seed": 3}})).train
    _, data = identify(cfg)
    assert data.source == "pkg.data:load" and data.name == "pkg.data:load"
    assert data.input_shape == (4, 3) and data.n_features == 12 and data.input_dtype == "float32"
    assert data.class_names == ["a", "b", "c"] and data.n_classes == 3 and data.task == "multiclass"
    assert len(data.y_test) == 20 and len(data.y_train) + len(data.y_val) == 40 and len(data.y_val) == 4
    expected = np.random.default_rng(3).normal(size=(60, 4, 3)).astype(np.float32)[40:]
    assert np.array_equal(data.x_test, expected)  # the loader got params (seed 3)


def test_tuples_integer_inputs_and_regression_targets(tmp_path: Path) -> None:
    loader = """\
        import numpy as np


        def load():
            x = (np.arange(50 * 6) % 97).reshape(50, 6).astype(np.int64)
            y = np.linspace(-2.0, 3.0, 50)
            return x[:30], y[:30], x[30:35], y[30:35, None], x[35:], y[35:]
        """
    cfg = load(user_project(tmp_path, {"data": "pkg.data:load", "task": "regression"}, pkg_data=loader)).train
    _, data = identify(cfg)
    assert data.input_dtype == "int32" and data.x_train.dtype == np.int32 and data.input_shape == (6,)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (30, 5, 15)  # its own validation split
    assert data.y_val.shape == (5,) and data.y_train.dtype == np.float32
    assert data.n_classes == 0 and data.class_names == []


def test_what_user_code_prints_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # stdout carries the CLI's JSON: a loader's chatter must not corrupt it.
    loader = "print('importing the loader')\n" + LOADER.replace("    rng =", "    print('loading')\n    rng =")
    identify(load(user_project(tmp_path, {"data": "pkg.data:load"}, pkg_data=loader)).train)
    out, err = capsys.readouterr()
    assert out == "" and "importing the loader" in err and "loading" in err


def test_fingerprint_follows_task_and_arrays(tmp_path: Path) -> None:
    binary = """\
        import numpy as np


        def load(params):
            x = np.arange(40, dtype=np.float32).reshape(20, 2) + params.get("shift", 0)
            y = np.arange(20) % 2
            return x[:15], y[:15], x[15:], y[15:]
        """
    config = user_project(tmp_path, {"data": "pkg.data:load", "task": "binary"}, pkg_data=binary)
    base = identify(load(config).train)[1].fingerprint
    assert identify(load(config).train)[1].fingerprint == base
    assert identify(load(config, {"params": {"shift": 1}}).train)[1].fingerprint != base
    assert identify(load(config, {"task": "multiclass"}).train)[1].fingerprint != base


# --- model id -------------------------------------------------------------------------------------------

def test_model_id_follows_the_users_code_params_and_nothing_else(tmp_path: Path) -> None:
    config = user_project(tmp_path)
    first = model_id_of(config)
    assert model_id_of(config) == first, "an untouched tree keeps its id"
    (tmp_path / "README.md").write_text("notes outside the package")
    (tmp_path / "pkg" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0" * 10)
    assert model_id_of(config) == first, "files that are not the package's sources do not count"

    assert model_id_of(config, {"params": {"width": 8}}) != first
    model_py = tmp_path / "pkg" / "model.py"
    model_py.write_text(BUILDER + "# a comment is a change\n")
    edited = model_id_of(config)
    assert edited != first, "the builder's module changed"
    (tmp_path / "pkg" / "layers.py").write_text("UNITS = 4\n")
    assert model_id_of(config) not in (first, edited), "any module of the builder's package counts"
    (tmp_path / "pkg" / "layers.py").unlink()
    model_py.write_text(BUILDER)
    assert model_id_of(config) == first, "the same bytes, the same id"


def test_a_single_module_project_is_hashed_alone(tmp_path: Path) -> None:
    project(tmp_path, {"solo.py": BUILDER, "other.py": "X = 1\n"})
    before = code_digest("solo:build", tmp_path)
    (tmp_path / "other.py").write_text("X = 2\n")
    assert code_digest("solo:build", tmp_path) == before
    (tmp_path / "solo.py").write_text(BUILDER + "\n")
    assert code_digest("solo:build", tmp_path) != before


def test_model_id_follows_the_artifacts_bytes(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"first model")
    config = user_project(tmp_path, {"artifact": "model.keras", "data": "pkg.data:load"})
    first = model_id_of(config)
    assert model_id_of(config) == first
    (tmp_path / "model.keras").write_bytes(b"second model")
    assert model_id_of(config) != first

    saved = tmp_path / "saved"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "variables.index").write_bytes(b"index")
    directory = model_id_of(config, {"artifact": "saved"})
    (saved / "variables" / "variables.index").write_bytes(b"other")
    assert model_id_of(config, {"artifact": "saved"}) != directory


def test_a_missing_artifact_is_named(tmp_path: Path) -> None:
    config = user_project(tmp_path, {"artifact": "absent.keras", "data": "pkg.data:load"})
    message = user_error(config)
    assert message.startswith(str((tmp_path / "absent.keras").resolve())) and "no such file" in message


def test_projects_with_the_same_package_name_do_not_mix(tmp_path: Path) -> None:
    one = user_project(tmp_path / "one", {"data": "pkg.data:load"})
    two = user_project(tmp_path / "two", {"data": "pkg.data:load"}, pkg_data=LOADER.replace("60, 4, 3", "60, 2, 2"))
    assert identify(load(one).train)[1].input_shape == (4, 3)
    assert identify(load(two).train)[1].input_shape == (2, 2)
    assert identify(load(one).train)[1].input_shape == (4, 3)


def test_a_store_hit_imports_neither_tensorflow_nor_the_builder(tmp_path: Path) -> None:
    config = user_project(tmp_path)
    script = textwrap.dedent(f"""
        import json, sys
        from model.pipeline import identify
        from model.config import load
        model_id, data = identify(load({str(config)!r}).train)
        print(json.dumps({{"id": model_id, "modules": sorted(m for m in sys.modules
                          if m.split(".")[0] in ("tensorflow", "keras", "pkg"))}}))
        """)
    proc = run_python("-c", script)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["modules"] == ["pkg", "pkg.data"], found  # the loader ran; nothing else of the user's
    assert found["id"] == model_id_of(config)


# --- errors at the user's line --------------------------------------------------------------------------

def test_syntax_error_in_the_loader(tmp_path: Path) -> None:
    config = user_project(tmp_path, {"data": "pkg.data:load"}, pkg_data="import numpy\n\ndef load(:\n    pass\n")
    message = user_error(config)
    starts_at(message, tmp_path / "pkg" / "data.py", 3)
    assert "SyntaxError" in message and "pkg.data:load" in message


def test_syntax_error_in_the_builder(tmp_path: Path) -> None:
    user_project(tmp_path, pkg_model="import keras\n\n\ndef build(params, spec)\n    return None\n")
    with pytest.raises(UserCodeError) as caught:
        load_callable("pkg.model:build", tmp_path, "builder")
    starts_at(str(caught.value), tmp_path / "pkg" / "model.py", 4)


def test_import_error_inside_the_users_module(tmp_path: Path) -> None:
    config = user_project(tmp_path, {"data": "pkg.data:load"},
                          pkg_data="import numpy as np\nimport not_a_module_anyone_has\n\n\ndef load():\n    pass\n")
    message = user_error(config)
    starts_at(message, tmp_path / "pkg" / "data.py", 2)
    assert "ModuleNotFoundError: No module named 'not_a_module_anyone_has'" in message


def test_an_exception_while_loading_names_the_deepest_user_line(tmp_path: Path) -> None:
    loader = "from pkg.helpers import read\n\n\ndef load():\n    return read()\n"
    helpers = "import numpy as np\n\n\ndef read():\n    return np.load('missing.npy')\n"
    config = user_project(tmp_path, {"data": "pkg.data:load"}, pkg_data=loader, pkg_helpers=helpers)
    message = user_error(config)
    starts_at(message, tmp_path / "pkg" / "helpers.py", 5)
    assert "FileNotFoundError" in message and "nothing was trained or registered" in message


def test_a_missing_function_or_module(tmp_path: Path) -> None:
    config = user_project(tmp_path, {"data": "pkg.data:lod"})
    message = user_error(config)
    starts_at(message, tmp_path / "pkg" / "data.py", 1)
    assert "has no function 'lod'" in message and "its functions: load" in message
    missing = user_error(load(config, {"data": "pkg.absent:load"}).train)
    assert missing.startswith(str(tmp_path.resolve())) and "no module 'pkg.absent'" in missing


def bad_loader(tmp_path: Path, body: str, task: str = "multiclass") -> tuple[str, Path]:
    """A loader whose `def` is on line 4 and returns what `body` builds; the error it causes."""
    loader = f"import numpy as np\n\n\ndef load():\n{textwrap.indent(textwrap.dedent(body), '    ')}"
    config = user_project(tmp_path, {"data": "pkg.data:load", "task": task}, pkg_data=loader)
    return user_error(config), tmp_path / "pkg" / "data.py"


@pytest.mark.parametrize("task, body, fragments", [
    ("multiclass", """\
        x, y = np.zeros((50, 3)), np.zeros(49)
        return x, y, x, np.zeros(50)
        """, ["x_train has 50 rows but y_train has 49"]),
    ("multiclass", """\
        y = np.array([0, 1, 2, 5] * 5)
        return {"x_train": np.ones((20, 2)), "y_train": y, "x_test": np.ones((20, 2)), "y_test": y % 3,
                "class_names": ["a", "b", "c"]}
        """, ["y_train", "label(s) out of range 0..2", "e.g. 5 at row 3"]),
    ("binary", """\
        y = np.array([0, 1, 2, 1])
        return np.ones((4, 2)), y, np.ones((4, 2)), y % 2
        """, ["y_train", "binary labels must be 0 or 1, found 2 at row 2"]),
    ("multiclass", """\
        x = np.ones((6, 2)); x[4, 1] = np.nan
        return np.ones((6, 2)), np.zeros(6), x, np.zeros(6)
        """, ["x_test", "NaN or infinite", "row 4, feature 1"]),
    ("regression", """\
        y = np.ones(6); y[2] = np.inf
        return np.ones((6, 2)), y, np.ones((6, 2)), np.ones(6)
        """, ["y_train", "NaN or infinite target", "row 2"]),
    ("multiclass", """\
        return np.ones((6, 2)), np.zeros(6), np.ones((6, 3)), np.zeros(6)
        """, ["disagree on the input shape", "x_train [2], x_test [3]"]),
    ("multiclass", """\
        return np.ones((6, 2)), np.full(6, 0.5), np.ones((6, 2)), np.zeros(6)
        """, ["y_train", "whole numbers"]),
    ("multiclass", """\
        return np.ones((6, 2)), np.zeros(6), np.ones((6, 2))
        """, ["returned a 3-tuple"]),
    ("multiclass", """\
        return {"x_train": np.ones((6, 2)), "y_train": np.zeros(6), "x_tset": np.ones((6, 2))}
        """, ["lacks x_test, y_test", "unknown key(s) x_tset"]),
    ("binary", """\
        y = np.arange(6) % 2
        return {"x_train": np.ones((6, 2)), "y_train": y, "x_test": np.ones((6, 2)), "y_test": y,
                "class_names": ["no", "maybe", "yes"]}
        """, ["task binary has 2 classes, class_names has 3"]),
    ("multiclass", """\
        return np.array([["a", "b"]] * 6), np.zeros(6), np.ones((6, 2)), np.zeros(6)
        """, ["x_train", "features must be real numbers"]),
], ids=["lengths", "outside-classes", "binary-not-0-1", "nan-x", "inf-target", "shapes", "fractional",
        "3-tuple", "mapping-keys", "binary-names", "strings"])
def test_bad_loader_output_names_the_loader_and_the_arrays(tmp_path: Path, task: str, body: str,
                                                           fragments: list[str]) -> None:
    message, data_py = bad_loader(tmp_path, body, task)
    starts_at(message, data_py, 4)
    assert "data loader pkg.data:load" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message}"


def test_a_builder_that_returns_no_keras_model(tmp_path: Path) -> None:
    builder = "import keras\n\n\ndef build(params, spec):\n    keras.Sequential()\n"
    config = user_project(tmp_path, pkg_model=builder)
    cfg = load(config).train
    _, data = identify(cfg)
    with pytest.raises(UserCodeError) as caught:
        build_user_model(cfg, data)
    starts_at(str(caught.value), tmp_path / "pkg" / "model.py", 4)
    assert "returned NoneType, not a keras.Model" in str(caught.value)


def test_a_builder_gets_params_and_the_data_spec(tmp_path: Path) -> None:
    builder = BUILDER.replace("x = keras.layers.Flatten()(inputs)",
                              "assert params == {'width': 3} and spec.x_train.shape[1:] == (4, 3), (params, spec)\n"
                              "    x = keras.layers.Flatten()(inputs)")
    cfg = load(user_project(tmp_path, {"builder": "pkg.model:build", "data": "pkg.data:load",
                                       "params": {"width": 3}}, pkg_model=builder)).train
    _, data = identify(cfg)
    model = build_user_model(cfg, data)
    assert model.input_shape == (None, 4, 3) and model.output_shape == (None, 3)


def test_the_examples_load_without_tensorflow() -> None:
    """The shipped examples' loaders, as a preview runs them (their training is the examples' deploy tests)."""
    script = textwrap.dedent("""
        import json, sys
        from model.pipeline import identify
        from model.config import load
        found = {}
        for name in ("cnn", "breast_cancer", "diabetes", "pretrained"):
            _, data = identify(load(f"examples/{name}/train.yaml").train)
            found[name] = [data.task, list(data.input_shape), data.class_names[:2], len(data.y_test)]
        found["tf"] = [m for m in ("tensorflow", "keras") if m in sys.modules]
        print(json.dumps(found))
        """)
    proc = run_python("-c", script)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found == {"cnn": ["multiclass", [8, 8, 1], ["0", "1"], 360],
                     "breast_cancer": ["binary", [30], ["malignant", "benign"], 114],
                     "diabetes": ["regression", [10], [], 89],
                     "pretrained": ["multiclass", [64], ["0", "1"], 450],
                     "tf": []}
    assert (ROOT / "examples" / "pretrained" / "model.keras").stat().st_size > 0


def test_search_steps_keep_the_project_root(tmp_path: Path) -> None:
    """A search step is validated anew (model/search.py); its loader and builder still come from the project."""
    from model.search import gated_entry

    config = user_project(tmp_path / "proj", {"builder": "pkg.model:build", "data": "pkg.data:load", "epochs": 1,
                                              "search": [{"epochs": 2}]})
    entry, result = gated_entry(config, thresholds={"loss": 0.0}, store_dir=tmp_path / "store")
    assert [a.overrides for a in result.attempts] == [{}, {"epochs": 2}], result.attempts
    assert entry.model_id == result.attempts[-1].model_id == model_id_of(config, {"epochs": 2})
