"""`promtool test rules` cases for every generated alert: synthetic series that must fire it, and series
that must leave it silent. Values derive from the spec's thresholds, so the cases follow the config.

The expected annotations are the rule's own templates rendered with the expected labels and value:
promtool compares them exactly, which also checks that each description shows the right number.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from statistics import NormalDist
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

SPEC = MonitoringSpec(
    environment="test",
    expected_model_id=MODEL_ID,
    targets=StaticTargets(addresses=["model:8080"]),
    traffic=Traffic(expected=True),
    drift=Drift(window="10m", min_rows=200),
    timing=Timing(evaluation_interval="1m", window="5m", pending="5m", down_pending="1m", drift_pending="10m"),
)
# The same stack serving a model of each task: the rules differ in their prediction drift only.
SPECS = {task: SPEC.model_copy(update={"task": task}) for task in ("multiclass", "binary", "regression")}


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


def shares(counts: list[float]) -> list[float]:
    return [n / sum(counts) for n in counts]


@dataclass(frozen=True)
class Binned:
    """A quantity the server counts per training quantile bin (an input feature, a regression's predictions),
    trained on Normal(mean, std): its edges are the training deciles, each bin holds a tenth of training."""

    mean: float
    std: float
    bins: int = 10

    @property
    def edges(self) -> list[float]:
        training = NormalDist(self.mean, self.std)
        return [training.inv_cdf(q / self.bins) for q in range(1, self.bins)]

    @property
    def ratios(self) -> list[float]:
        return [1 / self.bins] * self.bins

    def counts(self, mean: float, rows: float) -> list[float]:
        """Bin counts of `rows` values spread evenly over Normal(mean, std)'s quantiles (deterministic live
        traffic), binned as the server bins: `searchsorted(edges, v, side="right")`."""
        live, edges, n = NormalDist(mean, self.std), self.edges, math.ceil(rows)
        counts = [0.0] * self.bins
        for i in range(n):
            counts[bisect_right(edges, live.inv_cdf((i + 0.5) / n))] += 1
        return counts


def _counted(counter_name: str, reference_name: str, categories: list[dict[str, str]], reference: list[float],
             per_minute: list[float]) -> list[dict[str, str]]:
    """A reference gauge for every category, and a counter for each category the live traffic reaches: a
    category that never occurs has no series at all, and the rules must count it as share 0."""
    out = [series(reference_name, {**INSTANCE, **c}, gauge(r)) for c, r in zip(categories, reference)]
    out += [series(counter_name, {**INSTANCE, **c}, counter(n)) for c, n in zip(categories, per_minute) if n]
    return out


def _rows(per_minute: float) -> dict[str, str]:
    return series("modelship_input_rows_total", INSTANCE, counter(per_minute))


def _drift_rows(spec: MonitoringSpec) -> int:
    """Rows a minute that make twice `min_rows` over the drift window."""
    return math.ceil(spec.drift.min_rows / _minutes(spec.drift.window)) * 2


def _drift_at(spec: MonitoringSpec) -> str:
    return f"{_minutes(spec.drift.window) + _minutes(spec.timing.drift_pending) + 2}m"


def _classes(per_minute: list[float], reference: list[float]) -> list[dict[str, str]]:
    names = [{"class": str(c)} for c in range(len(reference))]
    return [*_counted("modelship_predictions_total", "modelship_reference_class_ratio", names, reference, per_minute),
            _rows(sum(per_minute))]


def class_drift(spec: MonitoringSpec) -> list[Case]:
    d, rows = spec.drift, _drift_rows(spec)
    if spec.task == "binary":
        reference, skew = [0.6, 0.4], [0.9, 0.1]
        skew_name = "the positive class falls from 40% to 10%"
    else:
        reference, skew = [0.1] * 10, [0.55] + [0.05] * 8 + [0.0]
        skew_name = "one class takes over, another vanishes"
    skewed = [rows * share for share in skew]
    expected = psi(shares(skewed), reference, d.psi_epsilon)
    assert expected > d.prediction_psi, "the skewed case must cross the threshold"
    few = [n / 10 for n in skewed]  # the same skew on too few rows to judge
    return [
        Case(skew_name, _classes(skewed, reference), _drift_at(spec), fires=[(JOB, expected)],
             still_pending_at=(f"{_minutes(d.window)}m",)),
        Case("classes as in training", _classes([rows * r for r in reference], reference), _drift_at(spec)),
        Case("skewed but below min_rows", _classes(few, reference), _drift_at(spec)),
    ]


# A regression's predictions on diabetes-like targets (around 150, spread 75).
PREDICTIONS = Binned(mean=150.0, std=75.0)


def _prediction_bins(per_minute: list[float]) -> list[dict[str, str]]:
    bins = [{"bin": str(b)} for b in range(PREDICTIONS.bins)]
    return [
        *_counted("modelship_prediction_bin_total", "modelship_reference_prediction_bin_ratio", bins, PREDICTIONS.ratios,
                  per_minute),
        _rows(sum(per_minute)),
    ]


def regression_drift(spec: MonitoringSpec) -> list[Case]:
    d, rows = spec.drift, _drift_rows(spec)
    shifted = PREDICTIONS.counts(PREDICTIONS.mean + PREDICTIONS.std, rows)
    expected = psi(shares(shifted), PREDICTIONS.ratios, d.psi_epsilon)
    assert expected > d.prediction_psi, "the shifted case must cross the threshold"
    return [
        Case("predictions one training std higher", _prediction_bins(shifted), _drift_at(spec), fires=[(JOB, expected)],
             still_pending_at=(f"{_minutes(d.window)}m",)),
        Case("predictions as in training", _prediction_bins(PREDICTIONS.counts(PREDICTIONS.mean, rows)), _drift_at(spec)),
        Case("shifted but below min_rows", _prediction_bins(PREDICTIONS.counts(PREDICTIONS.mean + PREDICTIONS.std, rows / 20)),
             _drift_at(spec)),
    ]


def prediction_drift(spec: MonitoringSpec) -> list[Case]:
    return class_drift(spec) if spec.classifies else regression_drift(spec)


# Monitored input features by flat index, in raw units: mostly negative, mixed-sign, and large negative values
# (a running sum of such values would fall; the server's bin counters only grow, whatever the sign).
FEATURES = {"3": Binned(mean=-2.0, std=1.0), "17": Binned(mean=0.0, std=1.0), "40": Binned(mean=-1e6, std=3e5)}


def _features(spec: MonitoringSpec, rows: float, live_mean: dict[str, float]) -> tuple[list[dict[str, str]], dict[str, float]]:
    """The series of every monitored feature with live values around `live_mean` (training mean if absent),
    and the PSI the rules should find per feature."""
    out, expected = [_rows(rows)], {}
    for index, feature in FEATURES.items():
        counts = feature.counts(live_mean.get(index, feature.mean), rows)
        bins = [{"feature": index, "bin": str(b)} for b in range(feature.bins)]
        out += _counted("modelship_input_feature_bin_total", "modelship_reference_feature_bin_ratio", bins, feature.ratios, counts)
        expected[index] = psi(shares(counts), feature.ratios, spec.drift.psi_epsilon)
    return out, expected


def input_drift(spec: MonitoringSpec) -> list[Case]:
    d, rows = spec.drift, _drift_rows(spec)
    # Feature 17 (mixed sign) moves one std down, into negative values; feature 3 (negative) moves a little.
    moved = {"17": -1.0, "3": -2.1}
    moved_series, moved_psi = _features(spec, rows, moved)
    assert moved_psi["17"] > d.input_psi > moved_psi["3"], moved_psi
    # Feature 40's values all fall below its lowest training bin: nine of its bins see no row at all.
    below = {"40": -1e6 - 10 * 3e5}
    below_series, below_psi = _features(spec, rows, below)
    assert max(below_psi, key=below_psi.get) == "40" and below_psi["40"] > d.input_psi, below_psi
    same_series, same_psi = _features(spec, rows, {})
    assert max(same_psi.values()) < d.input_psi / 4, same_psi
    few_series, _ = _features(spec, rows / 20, moved)
    at = _drift_at(spec)
    return [
        # Only the most drifted feature is named.
        Case("mixed-sign feature 17 moves into negative values", moved_series, at, fires=[({**JOB, "feature": "17"}, moved_psi["17"])],
             still_pending_at=(f"{_minutes(d.window)}m",)),
        Case("large negative feature 40 below its lowest training bin", below_series, at,
             fires=[({**JOB, "feature": "40"}, below_psi["40"])]),
        Case("negative and mixed-sign features as in training", same_series, at),
        Case("drifted but below min_rows", few_series, at),
    ]


def model_info_mismatch(spec: MonitoringSpec) -> list[Case]:
    def info(model_id: str) -> tuple[dict[str, str], dict[str, str]]:
        labels = {**INSTANCE, "model_id": model_id, "task": "multiclass", "format": "tflite", "gate_passed": "true",
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
