"""The gate: every check listed, lower and upper bounds, the judged format, its renderings."""
from __future__ import annotations

import pydantic
import pytest

from model.gate import Thresholds, evaluate, judge
from model.store import StoreEntry

METRICS = {"accuracy": 0.97, "f1_macro": 0.96, "loss": 0.12, "min_class_recall": 0.88}
ID = "a" * 64


def test_pass_lists_every_check() -> None:
    result = evaluate(ID, METRICS, {"accuracy": 0.9, "f1_macro": 0.9, "loss": 0.3})
    assert result.passed and result.format == "tflite"
    assert [(c.metric, c.value, c.threshold, c.op, c.passed) for c in result.checks] == [
        ("accuracy", 0.97, 0.9, ">=", True), ("f1_macro", 0.96, 0.9, ">=", True), ("loss", 0.12, 0.3, "<=", True)]
    assert result.summary.startswith("gate passed: tflite model aaaaaaaaaaaa meets all 3 thresholds")


def test_fail_names_the_failing_checks() -> None:
    result = evaluate(ID, METRICS, {"accuracy": 0.98, "f1_macro": 0.9, "loss": 0.1, "min_class_recall": 0.9})
    assert not result.passed
    assert [c.metric for c in result.checks if not c.passed] == ["accuracy", "min_class_recall", "loss"]
    assert "misses 3 of 4 thresholds: accuracy 0.97 < 0.98, min_class_recall 0.88 < 0.9, loss 0.12 > 0.1" in result.summary


def test_a_metric_that_was_not_measured_fails() -> None:
    result = evaluate(ID, {"accuracy": 0.99}, {"accuracy": 0.9, "recall_macro": 0.9})
    check = result.checks[1]
    assert not result.passed and check.value is None and not check.passed
    assert "recall_macro not measured" in result.summary


def test_no_thresholds_pass_with_no_checks() -> None:
    result = evaluate(ID, METRICS, {})
    assert result.passed and result.checks == []


def test_unknown_threshold_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="acuracy"):
        evaluate(ID, METRICS, {"acuracy": 0.9})


def test_markdown_and_labels() -> None:
    result = evaluate(ID, METRICS, {"accuracy": 0.98, "loss": 0.3})
    table = result.to_markdown()
    assert "| accuracy | 0.9700 | >= 0.98 | **FAIL** |" in table and "| loss | 0.1200 | <= 0.3 | pass |" in table
    assert result.to_labels() == {"ai.modelship.gate.passed": "false", "ai.modelship.gate.format": "tflite",
                                  "ai.modelship.gate.accuracy": "0.97", "ai.modelship.gate.loss": "0.12"}


def test_result_round_trips_through_json() -> None:
    result = evaluate(ID, METRICS, {"accuracy": 0.9})
    assert type(result).model_validate_json(result.model_dump_json()) == result


def test_judge_reads_the_served_artifact(quick_entry: StoreEntry) -> None:
    served = quick_entry.report.metrics["tflite"]
    result = judge(quick_entry, {"accuracy": served.accuracy})
    assert result.passed and result.format == "tflite" and result.model_id == quick_entry.model_id
    assert not judge(quick_entry, {"accuracy": min(1.0, served.accuracy + 1e-9)}).passed


def test_judge_another_format(quick_entry: StoreEntry) -> None:
    int8 = quick_entry.report.metrics["tflite_int8"]
    result = judge(quick_entry, Thresholds(format="tflite_int8", loss=int8.loss))
    assert result.format == "tflite_int8" and result.checks[0].value == int8.loss and result.passed


def test_judge_a_format_not_exported(quick_entry: StoreEntry) -> None:
    with pytest.raises(ValueError, match="'onnx' was not exported"):
        judge(quick_entry, {"format": "onnx", "accuracy": 0.5})


def test_unknown_threshold_names_the_known_metrics() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"acuracy\n  unknown metric; known metrics: accuracy, .*r2"):
        Thresholds.model_validate({"acuracy": 0.9})


@pytest.mark.parametrize("bad", [{"r2": 1.5}, {"mae": -1.0}, {"rmse": -0.1}, {"roc_auc": 1.2}, {"accuracy": -0.1}])
def test_thresholds_outside_a_metrics_range_are_refused(bad: dict) -> None:
    with pytest.raises(pydantic.ValidationError, match=next(iter(bad))):
        Thresholds.model_validate(bad)


def test_any_tasks_metric_is_a_threshold() -> None:
    limits = Thresholds(r2=-2.0, mae=1e6, roc_auc=0.5, accuracy=0.9)
    assert limits.limits() == {"accuracy": 0.9, "roc_auc": 0.5, "mae": 1e6, "r2": -2.0}
    assert Thresholds(accuracy=0.9, f1_macro=0.9).limits() == {"accuracy": 0.9, "f1_macro": 0.9}  # infra's default


def test_regression_gate(regression_entry: StoreEntry) -> None:
    served = regression_entry.report.served_metrics()
    result = judge(regression_entry, {"mae": served.mae, "rmse": served.rmse, "r2": served.r2})
    assert result.passed, result.summary
    assert [(c.metric, c.op) for c in result.checks] == [("mae", "<="), ("rmse", "<="), ("r2", ">=")]
    worse_mae = judge(regression_entry, {"mae": served.mae * 0.99})
    assert not worse_mae.passed and f"mae {served.mae:.4g} > {served.mae * 0.99:g}" in worse_mae.summary
    assert not judge(regression_entry, {"r2": served.r2 + 0.01}).passed


def test_a_metric_of_another_task_fails_its_check(regression_entry: StoreEntry, binary_entry: StoreEntry) -> None:
    result = judge(regression_entry, {"mae": 1e6, "accuracy": 0.5})
    assert not result.passed and {c.metric: c.passed for c in result.checks} == {"mae": True, "accuracy": False}
    assert "accuracy not a metric of task regression (needs >= 0.5)" in result.summary
    assert "| accuracy | not a metric of task regression | >= 0.5 | **FAIL** |" in result.to_markdown()
    assert type(result).model_validate(result.model_dump(mode="json")) == result
    assert "not a metric of task binary" in judge(binary_entry, {"r2": 0.0}).summary


def test_binary_gate_on_roc_auc(binary_entry: StoreEntry) -> None:
    served = binary_entry.report.served_metrics()
    result = judge(binary_entry, {"roc_auc": served.roc_auc, "pr_auc": served.pr_auc, "precision": served.precision})
    assert result.passed and all(c.op == ">=" for c in result.checks), result.summary
    # Promotion re-checks recorded numbers (infra keeps the numeric ones, without the task).
    recorded = {k: v for k, v in served.model_dump().items() if isinstance(v, (int, float))}
    assert not evaluate(ID, {**recorded, "roc_auc": 0.8}, {"roc_auc": 0.9}).passed
    assert "not a metric of task binary" in evaluate(ID, recorded, {"mae": 10.0}).summary


def test_recorded_metrics_name_their_task() -> None:
    regression = {"mae": 30.0, "rmse": 40.0, "r2": 0.4, "loss": 1600.0, "n_samples": 110}
    assert "not a metric of task regression" in evaluate(ID, regression, {"accuracy": 0.9}).summary
    assert "not a metric of task multiclass" in evaluate(ID, METRICS, {"roc_auc": 0.9}).summary
    assert "not a metric of task binary" in evaluate(ID, {"task": "binary", "accuracy": 0.9}, {"r2": 0.1}).summary
