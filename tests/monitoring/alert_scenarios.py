"""`promtool test rules` cases for every generated alert: synthetic series that must fire it, and series
that must leave it silent. Values derive from the spec's thresholds, so the cases follow the config.

The expected annotations are the rule's own templates rendered with the expected labels and value:
promtool compares them exactly, which also checks that each description shows the right number.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from app.metrics import LATENCY_BUCKETS
from monitoring.rules import AlertRule, alert_rules, number
from monitoring.spec import Drift, MonitoringSpec, StaticTargets, Timing, Traffic, seconds

MODEL_ID = "c0ffee" + "0" * 58
OTHER_MODEL_ID = "bad" + "0" * 61
JOB = {"job": "modelship"}
INSTANCE = {**JOB, "instance": "model:8080"}
ROUTE = {**INSTANCE, "route": "/v2/models/{name}/infer"}
INFER = {**ROUTE, "method": "POST"}
STEPS = 40  # samples per series, one a minute
CLASSES = [str(c) for c in range(10)]

SPEC = MonitoringSpec(
    environment="test",
    expected_model_id=MODEL_ID,
    targets=StaticTargets(addresses=["model:8080"]),
    traffic=Traffic(expected=True),
    drift=Drift(window="10m", min_rows=200),
    timing=Timing(evaluation_interval="1m", window="5m", pending="5m", down_pending="1m", drift_pending="10m"),
)


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def counter(per_minute: float, steps: int = STEPS) -> str:
    return f"0+{number(per_minute)}x{steps}"


def gauge(value: float, steps: int = STEPS) -> str:
    return f"{number(value)}x{steps}"


@dataclass
class Case:
    """Series, and the alerts (labels, value) expected at `eval_time`; none expected means silent."""

    name: str
    input_series: list[dict[str, str]]
    eval_time: str
    fires: list[tuple[dict[str, str], float]] = field(default_factory=list)
    # Times at which the condition already holds but `for` has not elapsed: nothing fires yet.
    still_pending_at: tuple[str, ...] = ()


def render_annotations(rule: AlertRule, labels: dict[str, str], value: float) -> dict[str, str]:
    def one(template: str) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
        return re.sub(r'\{\{ printf "(%\.\d+f)" \$value \}\}', lambda m: m.group(1) % value, text)

    return {"summary": one(rule.summary), "description": one(rule.description), "runbook": rule.runbook}


def promtool_tests(rules_path: str, rule: AlertRule, cases: list[Case], spec: MonitoringSpec = SPEC) -> dict[str, Any]:
    tests = []
    for case in cases:
        checks = [{"eval_time": t, "alertname": rule.alert, "exp_alerts": []} for t in case.still_pending_at]
        checks.append({
            "eval_time": case.eval_time,
            "alertname": rule.alert,
            "exp_alerts": [
                {
                    "exp_labels": {**labels, "severity": rule.severity, "environment": spec.environment},
                    "exp_annotations": render_annotations(rule, labels, value),
                }
                for labels, value in case.fires
            ],
        })
        tests.append({"name": f"{rule.alert}: {case.name}", "interval": "1m", "input_series": case.input_series,
                      "alert_rule_test": checks})
    return {"rule_files": [rules_path], "evaluation_interval": spec.timing.evaluation_interval, "tests": tests}


# --- the cases, one function per alert --------------------------------------------------------------

def _minutes(duration: str) -> int:
    return math.ceil(seconds(duration) / 60)


def endpoint_down(spec: MonitoringSpec) -> list[Case]:
    wait = _minutes(spec.timing.down_pending)
    down_from = 10
    flapping = f"1x{down_from - 1} 0x{STEPS - down_from}"
    return [
        Case("scrapes fail", [series("up", INSTANCE, flapping)], f"{down_from + wait + 1}m",
             fires=[(INSTANCE, 0)], still_pending_at=(f"{down_from}m",)),
        Case("scrapes succeed", [series("up", INSTANCE, gauge(1))], "30m"),
    ]


def _requests(ok_per_min: float, errors_per_min: float) -> list[dict[str, str]]:
    return [
        series("modelship_requests_total", {**INFER, "status": "200"}, counter(ok_per_min)),
        series("modelship_requests_total", {**INFER, "status": "500"}, counter(errors_per_min)),
    ]


def error_ratio(spec: MonitoringSpec) -> list[Case]:
    objective = spec.slo.error_ratio
    bad, fine = min(2 * objective, 0.5), objective / 2
    at = _minutes(spec.timing.window) + _minutes(spec.timing.pending) + 2
    readiness_503 = series("modelship_requests_total", {**INSTANCE, "route": "/v2/health/ready", "method": "GET", "status": "503"},
                           counter(1000))
    return [
        Case(f"{bad:.1%} of inference answered 5xx", _requests(1000 * (1 - bad), 1000 * bad), f"{at}m",
             fires=[(JOB, bad)], still_pending_at=(f"{_minutes(spec.timing.window)}m",)),
        # Failing readiness probes are not inference: they must not burn the availability budget.
        Case(f"{fine:.2%} of inference answered 5xx, probes failing", [*_requests(1000 * (1 - fine), 1000 * fine), readiness_503],
             f"{at}m"),
    ]


def histogram_quantile(q: float, counts: dict[float, float]) -> float:
    """Prometheus' interpolation within the server's bucket holding the q-th observation (the first starts at 0)."""
    rank = q * sum(counts.values())
    below, lower = 0.0, 0.0
    for upper in LATENCY_BUCKETS:
        n = counts.get(upper, 0.0)
        if n and below + n >= rank:
            return lower + (upper - lower) * (rank - below) / n
        below, lower = below + n, upper
    raise ValueError("rank beyond the last finite bucket")


def _latency(counts: dict[float, float]) -> list[dict[str, str]]:
    """Per-minute observations per bucket (upper bound -> count) as cumulative bucket counters."""
    out, cumulative = [], 0.0
    for upper in (*LATENCY_BUCKETS, math.inf):
        cumulative += counts.get(upper, 0.0)
        le = "+Inf" if upper == math.inf else number(upper)
        out.append(series("modelship_request_duration_seconds_bucket", {**ROUTE, "le": le}, counter(cumulative)))
    return out


def latency(spec: MonitoringSpec) -> list[Case]:
    objective = spec.slo.latency_p99_seconds
    above = [b for b in LATENCY_BUCKETS if b >= objective]
    below = [b for b in LATENCY_BUCKETS if b < objective]
    assert len(above) >= 2 and below, f"the server's buckets {LATENCY_BUCKETS} cannot show p99 around {objective}"
    # 30 fast requests a minute and 70 in the bucket just above the objective: p99 lands inside that bucket.
    slow = {below[0]: 30.0, above[1]: 70.0}
    fast = {below[0]: 30.0, below[-1]: 70.0}
    p99 = histogram_quantile(0.99, slow)
    assert p99 > objective and histogram_quantile(0.99, fast) <= objective
    at = _minutes(spec.timing.window) + _minutes(spec.timing.pending) + 2
    return [
        Case("p99 above the objective", _latency(slow), f"{at}m", fires=[(JOB, p99)]),
        Case("p99 within the objective", _latency(fast), f"{at}m"),
    ]


def no_traffic(spec: MonitoringSpec) -> list[Case]:
    at = f"{_minutes(spec.timing.window) + _minutes(spec.timing.pending) + 2}m"
    up = series("up", INSTANCE, gauge(1))
    steady = max(60 * spec.traffic.min_rps * 2, 60)
    return [
        # A counter that stopped moving, and one that never existed (no request since start): both idle.
        Case("up, counter flat", [up, series("modelship_requests_total", {**INFER, "status": "200"}, gauge(500))], at, fires=[(JOB, 1)]),
        Case("up, never called", [up], at, fires=[(JOB, 1)]),
        Case("up and serving", [up, series("modelship_requests_total", {**INFER, "status": "200"}, counter(steady))], at),
        # Down is ModelEndpointDown's business, not this alert's.
        Case("down", [series("up", INSTANCE, gauge(0))], at),
    ]


def psi(p: list[float], q: list[float], eps: float) -> float:
    return sum((pi - qi) * math.log((pi + eps) / (qi + eps)) for pi, qi in zip(p, q))


def _predictions(per_minute: list[float], reference: list[float]) -> list[dict[str, str]]:
    out = [series("modelship_reference_class_ratio", {**INSTANCE, "class": c}, gauge(r)) for c, r in zip(CLASSES, reference)]
    # Classes that never occur get no series at all: the rule must count them as share 0.
    out += [series("modelship_predictions_total", {**INSTANCE, "class": c}, counter(n)) for c, n in zip(CLASSES, per_minute) if n]
    out.append(series("modelship_input_rows_total", INSTANCE, counter(sum(per_minute))))
    return out


def prediction_drift(spec: MonitoringSpec) -> list[Case]:
    d = spec.drift
    reference = [0.1] * 10
    per_minute_needed = math.ceil(d.min_rows / _minutes(d.window)) * 2
    skewed = [per_minute_needed * 0.55] + [per_minute_needed * 0.05] * 8 + [0.0]
    expected = psi([n / sum(skewed) for n in skewed], reference, d.psi_epsilon)
    assert expected > d.prediction_psi, "the skewed case must cross the threshold"
    matching = [per_minute_needed * r for r in reference]
    few = [n / 10 for n in skewed]  # the same skew on too few rows to judge
    at = f"{_minutes(d.window) + _minutes(spec.timing.drift_pending) + 2}m"
    return [
        Case("one class takes over, another vanishes", _predictions(skewed, reference), at, fires=[(JOB, expected)],
             still_pending_at=(f"{_minutes(d.window)}m",)),
        Case("classes as in training", _predictions(matching, reference), at),
        Case("skewed but below min_rows", _predictions(few, reference), at),
    ]


def _inputs(rows_per_minute: float, live_mean: list[float], mean: list[float], std: list[float]) -> list[dict[str, str]]:
    out = [series("modelship_input_rows_total", INSTANCE, counter(rows_per_minute))]
    for i, (live, m, s) in enumerate(zip(live_mean, mean, std)):
        feature = {**INSTANCE, "feature": str(i)}
        out += [
            series("modelship_input_feature_sum", feature, counter(rows_per_minute * live)),
            series("modelship_reference_feature_mean", feature, gauge(m)),
            series("modelship_reference_feature_std", feature, gauge(s)),
        ]
    return out


def input_drift(spec: MonitoringSpec) -> list[Case]:
    d = spec.drift
    mean, std = [5.0, 10.0, 0.0], [2.0, 4.0, 0.5]
    z = d.input_mean_z + 1
    # Shifted up: the server's feature sums are counters, so rate() reads a falling sum as a restart.
    shifted = [mean[0] + std[0] * d.input_mean_z / 2, mean[1] + std[1] * z, mean[2]]
    within = [m + s * d.input_mean_z / 2 for m, s in zip(mean, std)]
    rows = math.ceil(d.min_rows / _minutes(d.window)) * 2
    at = f"{_minutes(d.window) + _minutes(spec.timing.drift_pending) + 2}m"
    return [
        # Only the most shifted feature is named.
        Case("feature 1 shifted", _inputs(rows, shifted, mean, std), at, fires=[({**JOB, "feature": "1"}, z)],
             still_pending_at=(f"{_minutes(d.window)}m",)),
        Case("every feature within half the threshold", _inputs(rows, within, mean, std), at),
        Case("shifted but below min_rows", _inputs(rows / 20, shifted, mean, std), at),
    ]


def model_info_mismatch(spec: MonitoringSpec) -> list[Case]:
    def info(model_id: str) -> tuple[dict[str, str], dict[str, str]]:
        labels = {**INSTANCE, "model_id": model_id, "version": model_id[:12], "format": "tflite", "gate_passed": "true",
                  "accuracy": "0.97", "f1_macro": "0.97"}
        return labels, series("modelship_model_info", labels, gauge(1))

    other, other_series = info(OTHER_MODEL_ID)
    _, expected_series = info(spec.expected_model_id)
    at = f"{_minutes(spec.timing.pending) + 2}m"
    return [
        Case("another model", [other_series], at, fires=[(other, 1)], still_pending_at=("1m",)),
        Case("the stack's model", [expected_series], at),
    ]


CASES = {
    "ModelEndpointDown": endpoint_down,
    "ModelErrorRatioHigh": error_ratio,
    "ModelLatencyP99High": latency,
    "ModelNoTraffic": no_traffic,
    "ModelPredictionDrift": prediction_drift,
    "ModelInputDrift": input_drift,
    "ModelInfoMismatch": model_info_mismatch,
}


def rule(spec: MonitoringSpec, alert: str) -> AlertRule:
    return next(r for r in alert_rules(spec) if r.alert == alert)
