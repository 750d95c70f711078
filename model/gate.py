"""The gate: thresholds on an artifact's metrics, and a result that lists every check.

Thresholds are keyed by metric name; `loss` is an upper bound, every other metric a lower bound. The judged
artifact is `format` when set, else the entry's serving format: the gate judges what the image carries.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field

from model.report import FormatMetrics

UPPER_BOUNDS = frozenset({"loss"})
LABEL_PREFIX = "ai.modelship.gate."
_Fraction = Optional[float]


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Optional[str] = None
    accuracy: _Fraction = Field(None, ge=0.0, le=1.0)
    precision_macro: _Fraction = Field(None, ge=0.0, le=1.0)
    recall_macro: _Fraction = Field(None, ge=0.0, le=1.0)
    f1_macro: _Fraction = Field(None, ge=0.0, le=1.0)
    precision_weighted: _Fraction = Field(None, ge=0.0, le=1.0)
    recall_weighted: _Fraction = Field(None, ge=0.0, le=1.0)
    f1_weighted: _Fraction = Field(None, ge=0.0, le=1.0)
    min_class_recall: _Fraction = Field(None, ge=0.0, le=1.0, description="every class's recall at least this")
    loss: Optional[float] = Field(None, ge=0.0, description="cross-entropy at most this")

    def limits(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump(exclude={"format"}).items() if v is not None}


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    # None: the metric was not measured, which fails the check.
    value: Optional[float]
    threshold: float
    op: Literal[">=", "<="]
    passed: bool

    def describe(self) -> str:
        if self.value is None:
            return f"{self.metric} not measured (needs {self.op} {self.threshold:g})"
        shown = self.op if self.passed else {">=": "<", "<=": ">"}[self.op]
        return f"{self.metric} {self.value:.4g} {shown} {self.threshold:g}"


class Attempt(BaseModel):
    """One configuration the search tried (model/search.py), in order."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    overrides: dict[str, Any]
    passed: bool
    summary: str


class GateResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_id: str
    format: str
    passed: bool
    checks: list[Check]
    summary: str
    attempts: list[Attempt] = Field(default_factory=list)

    def to_markdown(self) -> str:
        lines = [f"**{self.summary}**", "", "| metric | value | threshold | result |", "|---|---|---|---|"]
        for c in self.checks:
            value = "not measured" if c.value is None else f"{c.value:.4f}"
            lines.append(f"| {c.metric} | {value} | {c.op} {c.threshold:g} | {'pass' if c.passed else '**FAIL**'} |")
        if len(self.attempts) > 1:
            lines += ["", "Search, in order:", ""]
            lines += [f"{i}. `{a.model_id[:12]}` {a.overrides or '(base config)'}: {a.summary}" for i, a in enumerate(self.attempts, 1)]
        return "\n".join(lines) + "\n"

    def to_labels(self) -> dict[str, str]:
        labels = {f"{LABEL_PREFIX}passed": str(self.passed).lower(), f"{LABEL_PREFIX}format": self.format}
        labels.update({f"{LABEL_PREFIX}{c.metric}": f"{c.value:.4g}" for c in self.checks if c.value is not None})
        return labels


def _value(metrics: Mapping[str, Any], name: str) -> Optional[float]:
    value = metrics.get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return None
    return float(value)


def evaluate(model_id: str, metrics: Mapping[str, Any] | FormatMetrics, thresholds: Thresholds | Mapping[str, Any],
             format: str = "tflite") -> GateResult:
    """Judges recorded metrics (one artifact's) against thresholds; also used for promoted models."""
    limits = thresholds if isinstance(thresholds, Thresholds) else Thresholds.model_validate(dict(thresholds))
    measured = metrics.scalars() if isinstance(metrics, FormatMetrics) else metrics
    format = limits.format or format
    checks = []
    for metric, threshold in limits.limits().items():
        value = _value(measured, metric)
        op: Literal[">=", "<="] = "<=" if metric in UPPER_BOUNDS else ">="
        ok = value is not None and (value <= threshold if op == "<=" else value >= threshold)
        checks.append(Check(metric=metric, value=value, threshold=threshold, op=op, passed=ok))
    passed = all(c.passed for c in checks)
    failed = [c for c in checks if not c.passed]
    who = f"{format} model {model_id[:12]}"
    if not checks:
        summary = f"gate passed: {who}, no thresholds set"
    elif passed:
        summary = f"gate passed: {who} meets all {len(checks)} thresholds ({', '.join(c.describe() for c in checks)})"
    else:
        summary = f"gate failed: {who} misses {len(failed)} of {len(checks)} thresholds: {', '.join(c.describe() for c in failed)}"
    return GateResult(model_id=model_id, format=format, passed=passed, checks=checks, summary=summary)


def judge(entry: Any, thresholds: Thresholds | Mapping[str, Any]) -> GateResult:
    """The gate for a store entry (model.store.StoreEntry): its served artifact, or the one `format` names."""
    limits = thresholds if isinstance(thresholds, Thresholds) else Thresholds.model_validate(dict(thresholds))
    report = entry.report
    format = limits.format or report.serving_format
    if format not in report.metrics:
        raise ValueError(
            f"gate format {format!r} was not exported for model {report.model_id[:12]}; measured formats: {sorted(report.metrics)}"
        )
    return evaluate(report.model_id, report.metrics[format], limits, format)
