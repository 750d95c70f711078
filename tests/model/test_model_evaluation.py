"""Every shipped artifact is scored from its own predictions, and the scores are scikit-learn's."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, confusion_matrix, log_loss, multilabel_confusion_matrix,
                             precision_recall_fscore_support)

from model.pipeline import identify
from model.evaluate import metrics
from model.report import MulticlassMetrics
from model.store import StoreEntry
from model_helpers import run_saved_model, run_tflite


def assert_matches_sklearn(m: MulticlassMetrics, y: np.ndarray, proba: np.ndarray) -> None:
    pred = proba.argmax(axis=1)
    labels = list(range(proba.shape[1]))
    assert m.accuracy == accuracy_score(y, pred)
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels, average=average, zero_division=0)
        assert (getattr(m, f"precision_{average}"), getattr(m, f"recall_{average}"), getattr(m, f"f1_{average}")) == (p, r, f)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    assert [c.precision for c in m.per_class] == list(p) and [c.recall for c in m.per_class] == list(r)
    assert [c.f1 for c in m.per_class] == list(f) and [c.support for c in m.per_class] == list(s)
    assert m.confusion_matrix == confusion_matrix(y, pred, labels=labels).tolist()
    # sklearn's per-class one-vs-rest matrices are [[tn, fp], [fn, tp]].
    assert [[[c.tn, c.fp], [c.fn, c.tp]] for c in m.per_class] == multilabel_confusion_matrix(y, pred, labels=labels).tolist()
    # Cross-entropy of the output distribution: int8 rows sum to 1 only within ~1/256, so both normalise.
    assert m.loss == pytest.approx(log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=labels), rel=1e-9)
    assert m.min_class_recall == min(r[s > 0]) and m.n_samples == len(y)


@pytest.mark.parametrize("fmt", ["tflite", "saved_model", "tflite_int8"])
def test_report_equals_sklearn_on_the_artifacts_predictions(quick_entry: StoreEntry, fmt: str) -> None:
    report = quick_entry.report
    data = identify(report.config)[1]
    path = quick_entry.path / report.artifacts[fmt]
    proba = run_saved_model(path, data.x_test) if fmt == "saved_model" else run_tflite(path, data.x_test)
    assert_matches_sklearn(report.metrics[fmt], data.y_test, proba)


def test_metrics_with_a_class_never_predicted_and_one_absent() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)  # class 3 never occurs
    proba = rng.dirichlet(np.ones(4), 200)
    proba[:, 2] = 0.0  # class 2 never predicted
    proba /= proba.sum(axis=1, keepdims=True)
    m = metrics("multiclass", y, proba, ["a", "b", "c", "d"])
    assert_matches_sklearn(m, y, proba)
    assert m.per_class[2].precision == 0.0 and m.per_class[3].support == 0
    assert m.min_class_recall == min(c.recall for c in m.per_class[:3])


def test_quantized_model_is_evaluated_on_its_own(quick_entry: StoreEntry) -> None:
    from ai_edge_litert.interpreter import Interpreter

    report = quick_entry.report
    assert report.artifacts["tflite_int8"] == "model_int8.tflite"
    int8_path = quick_entry.path / "model_int8.tflite"
    interpreter = Interpreter(model_path=str(int8_path))
    dtypes = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert np.int8 in dtypes, "the int8 artifact holds no int8 tensors: it was not quantised"
    assert report.sizes["tflite_int8"] < report.sizes["tflite"]

    data = identify(report.config)[1]
    float_proba = run_tflite(quick_entry.path / "model.tflite", data.x_test)
    int8_proba = run_tflite(int8_path, data.x_test)
    assert not np.array_equal(float_proba, int8_proba)
    assert report.metrics["tflite_int8"].loss != report.metrics["tflite"].loss
    assert_matches_sklearn(report.metrics["tflite_int8"], data.y_test, int8_proba)
    # Quantisation may cost a little accuracy, not the model.
    assert report.metrics["tflite_int8"].accuracy > report.metrics["tflite"].accuracy - 0.05


def test_float_artifacts_agree(quick_entry: StoreEntry) -> None:
    metrics_ = quick_entry.report.metrics
    assert metrics_["tflite"].confusion_matrix == metrics_["saved_model"].confusion_matrix
    assert metrics_["tflite"].loss == pytest.approx(metrics_["saved_model"].loss, rel=1e-4)
