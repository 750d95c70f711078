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
