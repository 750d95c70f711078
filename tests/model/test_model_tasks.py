"""Tasks and inputs beyond the default: binary and regression (built-in MLP on a user's loader), token ids
through a user's builder, pre-trained artifacts, and user models whose output does not fit the task.

Metrics are checked against scikit-learn on each artifact's own predictions, run independently of model/.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, log_loss,
                             mean_absolute_error, mean_squared_error, precision_recall_fscore_support, r2_score,
                             roc_auc_score)

from model import Store, StoreEntry, TrainConfig, UserCodeError, identify, trained_entry
from model.pipeline import bins, reference
from model.config import MonitorConfig
from model.data import Dataset
from model_helpers import USER_PROJECT, run_saved_model, run_tflite, user_config

FORMATS = ["tflite", "saved_model", "tflite_int8"]


def artifact_output(entry: StoreEntry, fmt: str, x: np.ndarray) -> np.ndarray:
    path = entry.path / entry.report.artifacts[fmt]
    return run_saved_model(path, x) if fmt == "saved_model" else run_tflite(path, x)


def assert_binary_metrics_are_sklearns(m, y: np.ndarray, p: np.ndarray) -> None:
    pred = (p >= 0.5).astype(int)
    assert m.task == "binary" and m.n_samples == len(y)
    assert m.accuracy == accuracy_score(y, pred)
    assert m.confusion_matrix == confusion_matrix(y, pred, labels=[0, 1]).tolist()
    assert (m.precision, m.recall, m.f1) == precision_recall_fscore_support(y, pred, average="binary", zero_division=0)[:3]
    p_macro, r_macro, f_macro, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert (m.precision_macro, m.recall_macro, m.f1_macro) == (p_macro, r_macro, f_macro)
    assert m.roc_auc == roc_auc_score(y, p) and m.pr_auc == average_precision_score(y, p)
    assert m.loss == pytest.approx(log_loss(y, np.column_stack([1 - p, p]), labels=[0, 1]), rel=1e-9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_binary_metrics_are_sklearns(binary_entry: StoreEntry, binary_config: TrainConfig, fmt: str) -> None:
    data = identify(binary_config)[1]
    p = artifact_output(binary_entry, fmt, data.x_test)
    assert p.shape == (len(data.x_test), 1)
    assert_binary_metrics_are_sklearns(binary_entry.report.metrics[fmt], data.y_test, p.reshape(-1))


def test_binary_entry(binary_entry: StoreEntry, binary_config: TrainConfig) -> None:
    report, data = binary_entry.report, identify(binary_config)[1]
    assert report.task == "binary" and report.data.class_names == ["malignant", "benign"]
    assert report.signature.input.model_dump() == {"name": "features", "dtype": "float32", "shape": [30]}
    assert report.signature.output.shape == [1]
    assert report.reference.class_distribution == (np.bincount(data.y_train) / len(data.y_train)).tolist()
    assert report.reference.prediction is None
    assert report.served_metrics().roc_auc > 0.9  # five epochs of the built-in MLP already separate the classes
    files = {p.name for p in binary_entry.path.iterdir()}
    assert {"roc_curve.png", "confusion_matrix.png", "training_curves.png", "model_card.md"} <= files
    assert "predicted_vs_true.png" not in files
    card = (binary_entry.path / "model_card.md").read_text()
    assert "| roc_auc | pr_auc |" in card and "probability of class `benign`" in card


@pytest.mark.parametrize("fmt", FORMATS)
def test_regression_metrics_are_sklearns(regression_entry: StoreEntry, regression_config: TrainConfig, fmt: str) -> None:
    data = identify(regression_config)[1]
    predicted = artifact_output(regression_entry, fmt, data.x_test)
    assert predicted.shape == (len(data.x_test), 1)
    predicted = predicted.reshape(-1)
    m = regression_entry.report.metrics[fmt]
    assert m.task == "regression" and m.n_samples == len(data.y_test)
    assert m.mae == pytest.approx(mean_absolute_error(data.y_test, predicted), rel=1e-12)
    assert m.loss == pytest.approx(mean_squared_error(data.y_test, predicted), rel=1e-12)
    assert m.rmse == pytest.approx(np.sqrt(mean_squared_error(data.y_test, predicted)), rel=1e-12)
    assert m.r2 == pytest.approx(r2_score(data.y_test, predicted), rel=1e-12)
    assert m.scalars().keys() == {"mae", "rmse", "r2", "loss"}


def test_regression_entry(regression_entry: StoreEntry, regression_config: TrainConfig) -> None:
    report, data = regression_entry.report, identify(regression_config)[1]
    assert report.task == "regression" and report.data.n_classes == 0 and report.data.class_names == []
    assert report.signature.output.shape == [1]
    assert report.served_metrics().r2 > 0.3, "the target's scale inside the model lets a few epochs learn it"
    assert report.reference.class_distribution == []
    # Prediction drift's baseline: the served artifact's own predictions on the training split.
    served = artifact_output(regression_entry, report.serving_format, data.x_train).reshape(-1)
    assert report.reference.prediction == bins(served, report.config.monitor.bins)
    assert len(report.reference.prediction.edges) == 9
    # Diabetes has 10 features, all monitored at the default of 10.
    assert [f.index for f in report.reference.features] == list(range(10))
    files = {p.name for p in regression_entry.path.iterdir()}
    assert "predicted_vs_true.png" in files and "confusion_matrix.png" not in files
    assert set(report.training.history) == {"loss", "mae", "val_loss", "val_mae"}


def test_token_ids_export_and_evaluate(store_root: Path) -> None:
    config = user_config({"task": "binary", "builder": "tasks_models:tokens", "data": "tasks_data:tokens",
                          "params": {"dim": 8}, "epochs": 3, "export": {"int8": True}})
    entry = trained_entry(config, Store(store_root))
    data = identify(config)[1]
    assert data.x_train.dtype == np.int32
    assert entry.report.signature.input.model_dump() == {"name": "tokens", "dtype": "int32", "shape": [12]}
    assert any(line.endswith(": Embedding [12, 8]") for line in entry.report.architecture)
    for fmt in FORMATS:
        p = artifact_output(entry, fmt, data.x_test).reshape(-1)
        assert_binary_metrics_are_sklearns(entry.report.metrics[fmt], data.y_test, p)
    from ai_edge_litert.interpreter import Interpreter

    assert Interpreter(model_path=str(entry.path / "model_int8.tflite")).get_input_details()[0]["dtype"] == np.int32


def _def_line(name: str) -> int:
    lines = (USER_PROJECT / "tasks_models.py").read_text().splitlines()
    return lines.index(next(line for line in lines if line.startswith(f"def {name}("))) + 1


@pytest.mark.parametrize("task, builder, data, expected, found", [
    ("binary", "three_classes", "tasks_data:breast_cancer", "expected [batch, 1] probability of class 1", "found [batch, 3]"),
    ("regression", "three_classes", "tasks_data:diabetes", "expected [batch, 1] (or [batch]) the predicted target",
     "found [batch, 3]"),
    # The built-in digits data; logits are not probabilities.
    ("multiclass", "logits", {"name": "digits"}, "expected [batch, 10] class probabilities (softmax)", "rows summing to"),
])
def test_output_that_does_not_fit_the_task(tmp_path: Path, task: str, builder: str, data, expected: str, found: str) -> None:
    config = user_config({"task": task, "builder": f"tasks_models:{builder}", "data": data, "epochs": 1})
    with pytest.raises(UserCodeError) as caught:
        trained_entry(config, Store(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"{USER_PROJECT / 'tasks_models.py'}:{_def_line(builder)}: builder tasks_models:{builder}")
    assert f"does not fit task {task}: {expected}" in message and found in message
    assert not [p for p in tmp_path.iterdir() if len(p.name) == 64], "a failed build left an entry"


def test_artifact_that_cannot_be_loaded(tmp_path: Path) -> None:
    broken = tmp_path / "model.keras"
    broken.write_bytes(b"not a zip archive")
    not_saved = tmp_path / "exported"
    not_saved.mkdir()
    (not_saved / "weights.bin").write_bytes(b"\0")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "saved_model.pb").write_bytes(b"\x08garbage")
    for artifact, problem, fix in (
        (broken, "cannot be loaded as a Keras model", "model.save('model.keras')"),
        (not_saved, "without saved_model.pb", "model.save('model.keras')"),
        (damaged, "no loadable serving_default signature", "keras.Model.export(dir)"),
    ):
        config = user_config({"task": "binary", "artifact": str(artifact), "data": "tasks_data:breast_cancer"})
        with pytest.raises(UserCodeError, match=problem) as caught:
            trained_entry(config, Store(tmp_path / "store"))
        assert str(caught.value).startswith(f"{artifact}: artifact") and fix in str(caught.value)
    assert not (tmp_path / "store").exists() or not [p for p in (tmp_path / "store").iterdir() if len(p.name) == 64]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, binary_config: TrainConfig) -> tuple[Path, Path, np.ndarray]:
    """A small binary model trained elsewhere, saved as .keras and exported as a SavedModel; its test outputs."""
    import keras

    data = identify(binary_config)[1]
    keras.utils.set_random_seed(1)
    inputs = keras.Input((30,), name="measurements")
    norm = keras.layers.Normalization()
    norm.adapt(data.x_train)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(norm(inputs)))
    model.compile("adam", "binary_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=3, verbose=0)
    directory = tmp_path_factory.mktemp("pretrained")
    model.save(directory / "model.keras")
    model.export(str(directory / "exported"), format="tf_saved_model", verbose=False)
    return directory / "model.keras", directory / "exported", np.asarray(model.predict(data.x_test, verbose=0))


@pytest.mark.parametrize("kind", ["keras", "saved_model"])
def test_pretrained_artifact_ships_without_training(store_root: Path, binary_config: TrainConfig, pretrained, kind: str) -> None:
    keras_file, saved_dir, keras_output = pretrained
    artifact = keras_file if kind == "keras" else saved_dir
    config = user_config({"task": "binary", "artifact": str(artifact), "data": "tasks_data:breast_cancer",
                          "export": {"int8": False}})
    entry = trained_entry(config, Store(store_root))
    report, data = entry.report, identify(binary_config)[1]
    assert not report.trained and report.training.history == {}
    assert report.signature.input.name == "measurements"
    files = {p.name for p in entry.path.iterdir()}
    assert "training_curves.png" not in files and "roc_curve.png" in files
    assert "None: a pre-trained artifact" in (entry.path / "model_card.md").read_text()
    assert bool(report.architecture) == (kind == "keras")
    # What ships is the artifact's own model: its scores are those of the model that was saved.
    assert report.served_metrics().roc_auc == pytest.approx(roc_auc_score(data.y_test, keras_output.reshape(-1)), abs=1e-6)
    if kind == "saved_model":
        shipped = {p.relative_to(entry.path / "saved_model"): p.read_bytes() for p in (entry.path / "saved_model").rglob("*") if p.is_file()}
        assert shipped == {p.relative_to(saved_dir): p.read_bytes() for p in saved_dir.rglob("*") if p.is_file()}


def test_reference_bins_for_negative_and_mixed_sign_features() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    x = np.column_stack([
        rng.uniform(-100.0, -1.0, n),    # all negative
        rng.normal(0.0, 5.0, n),         # mixed sign, the most variable but one
        np.full(n, -3.0),                # constant
        rng.integers(-2, 3, n),          # five values, mixed sign
        rng.normal(0.0, 0.01, n),        # the least variable that varies
    ]).astype(np.float32)
    y = rng.integers(0, 2, n)
    data = Dataset("synthetic", "test", "binary", x, y, x[:0], y[:0], x[:10], y[:10], ["a", "b"], "0")
    ref = reference(data, MonitorConfig(features=4, bins=10), None)
    assert [f.index for f in ref.features] == [0, 1, 3, 4], "the four most variable features, by flat index"
    for f in ref.features:
        column = x[:, f.index].astype(np.float64)
        edges = np.array(f.edges)
        assert len(edges) <= 9 and np.all(np.diff(edges) > 0) and edges.min() > column.min()
        counts = np.bincount(np.searchsorted(edges, column, side="right"), minlength=len(edges) + 1)
        assert f.ratios == (counts / n).tolist() and min(f.ratios) > 0
    uniform_negative, normal_mixed, five_values = ref.features[0], ref.features[1], ref.features[2]
    assert all(e < 0 for e in uniform_negative.edges) and np.allclose(uniform_negative.ratios, 0.1, atol=0.002)
    assert normal_mixed.edges[0] < 0 < normal_mixed.edges[-1] and np.allclose(normal_mixed.ratios, 0.1, atol=0.002)
    # Integers -2..2: cut points at some of -1, 0, 1, 2 (never at the minimum -2), one bin per value range.
    assert set(five_values.edges) <= {-1.0, 0.0, 1.0, 2.0} and len(five_values.ratios) == len(five_values.edges) + 1
    assert sum(ref.class_distribution) == pytest.approx(1.0)
    # A constant series has one bin holding everything.
    assert bins(np.full(5, -3.0), 10).model_dump() == {"edges": [], "ratios": [1.0]}
