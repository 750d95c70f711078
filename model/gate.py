"""The gate: thresholds on an artifact's metrics, and a result that lists every check.

Thresholds are keyed by metric name, any task's (model/report.py); `loss`, `mae` and `rmse` are upper
bounds, every other metric a lower bound; a metric the judged model's task lacks fails its check. The judged
artifact is `format` when set, else the entry's serving format: the gate judges what the image carries.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Optional, get_args

from pydantic import (BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, ValidationError, create_model,
                      model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from model.report import METRIC_TYPES, TaskMetrics

UPPER_BOUNDS = frozenset({"loss", "mae", "rmse"})
LABEL_PREFIX = "ai.modelship.gate."


def _is_float(annotation: Any) -> bool:
    return annotation is float or any(_is_float(a) for a in get_args(annotation))


def _metric_fields() -> dict[str, Any]:
    """Every task's gateable metric (a float field), with the bounds its value has, as an optional threshold."""
    fields: dict[str, Any] = {}
    for kind in METRIC_TYPES.values():
        for name, info in kind.model_fields.items():
            if name not in fields and _is_float(info.annotation):
                fields[name] = (Optional[info.rebuild_annotation()], None)
    return fields


class _ThresholdsBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Optional[str] = None

    @model_validator(mode="wrap")
    @classmethod
    def _known_metrics(cls, raw: Any, handler: ModelWrapValidatorHandler["_ThresholdsBase"]) -> "_ThresholdsBase":
        # Every problem in one message, an unknown name with the names that would have worked.
        try:
            return handler(raw)
        except ValidationError as e:
            known = ", ".join(sorted(set(cls.model_fields) - {"format"}))
            unknown = PydanticCustomError("unknown_metric", "unknown metric; known metrics: {known}", {"known": known})
            problems: list[InitErrorDetails] = [
                {"type": unknown if err["type"] == "extra_forbidden" else err["type"], "loc": err["loc"],
                 "input": err["input"], **({"ctx": err["ctx"]} if "ctx" in err else {})}
                for err in e.errors()
            ]
            raise ValidationError.from_exception_data(cls.__name__, problems) from None

    def limits(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump(exclude={"format"}).items() if v is not None}


# `format` (the judged artifact, default the served one) and one optional bound per metric of any task.
Thresholds = create_model("Thresholds", __base__=_ThresholdsBase, __module__=__name__, **_metric_fields())


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    # None: the metric was not measured, which fails the check; `missing` says why.
    value: Optional[float]
    threshold: float
    op: Literal[">=", "<="]
    passed: bool
    missing: Optional[str] = None

    def describe(self) -> str:
        if self.value is None:
            return f"{self.metric} {self.missing or 'not measured'} (needs {self.op} {self.threshold:g})"
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
            value = (c.missing or "not measured") if c.value is None else f"{c.value:.4f}"
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


def task_of(metrics: Mapping[str, Any]) -> Optional[str]:
    """The task recorded metrics belong to: their `task`, else the first task that has every metric named.

    Promotion hands over the served format's numbers only (infra/gate.py), without the task.
    """
    if isinstance(metrics.get("task"), str):
        return metrics["task"]
    named = {k for k in metrics if k in Thresholds.model_fields}
    fitting = [task for task, kind in METRIC_TYPES.items() if named <= set(kind.model_fields)]
    return fitting[0] if named and fitting else None


def evaluate(model_id: str, metrics: Mapping[str, Any] | TaskMetrics, thresholds: Thresholds | Mapping[str, Any],
             format: str = "tflite") -> GateResult:
    """Judges recorded metrics (one artifact's) against thresholds; also used for promoted models."""
    limits = thresholds if isinstance(thresholds, Thresholds) else Thresholds.model_validate(dict(thresholds))
    if isinstance(metrics, TaskMetrics):
        task: Optional[str] = metrics.task
        measured: Mapping[str, Any] = metrics.scalars()
    else:
        task, measured = task_of(metrics), metrics
    format = limits.format or format
    checks = []
    for metric, threshold in limits.limits().items():
        value = _value(measured, metric)
        op: Literal[">=", "<="] = "<=" if metric in UPPER_BOUNDS else ">="
        ok = value is not None and (value <= threshold if op == "<=" else value >= threshold)
        missing = None
        if value is None:
            has = task is not None and metric in METRIC_TYPES[task].model_fields
            missing = f"not a metric of task {task}" if task is not None and not has else "not measured"
        checks.append(Check(metric=metric, value=value, threshold=threshold, op=op, passed=ok, missing=missing))
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
