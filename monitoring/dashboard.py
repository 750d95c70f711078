"""The Grafana dashboard (file-provisioning format): service health against the SLO, and drift.

Panels read the recorded series of `monitoring.rules` where one exists, so the dashboard shows exactly
what the alerts judge. Expressions carry no Grafana variables: each one is plain PromQL that
`promtool check rules` can parse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from monitoring import rules
from monitoring.rules import Selectors, number
from monitoring.spec import MonitoringSpec

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    # A red line at the objective or threshold the alerts use.
    threshold: Optional[float] = None
    width: int = 12
    description: str = ""


def panels(spec: MonitoringSpec) -> list[Panel]:
    s = Selectors(spec)
    w = spec.timing.window
    slo, drift = spec.slo, spec.drift
    buckets = s("modelship_request_duration_seconds_bucket", s.routes)
    features = rules.FEATURE_BINS
    top_feature = f"topk by (job) (1, {rules.FEATURE_PSI})"
    return [
        Panel(
            "Request rate by route and status",
            (Query(f'sum by (route, status) (rate({s("modelship_requests_total")}[{w}]))', "{{route}} {{status}}"),),
            unit="reqps",
        ),
        Panel(
            "Inference error ratio",
            (Query(rules.ERROR_RATIO, "5xx share"),),
            unit="percentunit",
            threshold=slo.error_ratio,
            description=f"Availability objective {number(slo.availability)}.",
        ),
        Panel(
            "Inference latency quantiles",
            tuple(
                Query(f"histogram_quantile({q}, sum by (le) (rate({buckets}[{w}])))", f"p{round(q * 100)}")
                for q in (0.5, 0.9, 0.99)
            ),
            unit="s",
            threshold=slo.latency_p99_seconds,
            description=f"p99 objective {number(slo.latency_p99_seconds)} s.",
        ),
        Panel(
            "Requests in flight and targets up",
            (
                Query(f'sum({s("modelship_requests_in_flight")})', "in flight"),
                Query(f'sum({s("up")})', "targets up"),
            ),
        ),
        _prediction_shares(spec),
        Panel(
            "Prediction drift (PSI)",
            (Query(rules.PSI, "PSI"),),
            threshold=drift.prediction_psi,
            width=6,
        ),
        Panel(
            "Input drift (largest feature PSI)",
            (Query(rules.MAX_FEATURE_PSI, "max PSI"),),
            threshold=drift.input_psi,
            width=6,
        ),
        Panel(
            "Most drifted input features (PSI)",
            (Query(f"topk(5, {rules.FEATURE_PSI})", "feature {{feature}}"),),
            threshold=drift.input_psi,
        ),
        Panel(
            "Most drifted input feature: live bin share vs training",
            (
                Query(f"{features.share} and on(job, feature) {top_feature}", "live feature {{feature}} bin {{bin}}"),
                Query(f"{features.reference_share} and on(job, feature) {top_feature}", "training feature {{feature}} bin {{bin}}"),
            ),
            unit="percentunit",
            description=f"Bins are the feature's training quantiles (report.json reference.features); live shares over {drift.window}.",
        ),
        Panel(
            "Served model",
            (Query(s("modelship_model_info"), "{{model_id}}", instant=True),),
            kind="table",
            description=f"Expected model id: {spec.expected_model_id}.",
        ),
    ]


def _prediction_shares(spec: MonitoringSpec) -> Panel:
    """Class shares for a classifier, the shares of the training quantile bins for a regression."""
    predicted = rules.predictions(spec)
    label = f"{predicted.category} {{{{{predicted.category}}}}}"
    return Panel(
        "Predicted classes: live share vs training" if spec.classifies else "Predictions per training quantile bin: live share vs training",
        (
            Query(predicted.share, f"live {label}"),
            Query(predicted.reference_share, f"training {label}"),
        ),
        unit="percentunit",
        description=f"Live shares over {spec.drift.window}."
        + ("" if spec.classifies else " Bins are the quantiles of the training predictions (report.json reference.prediction)."),
    )


def _field_config(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    custom: dict[str, Any] = {}
    if panel.threshold is not None:
        steps.append({"color": "red", "value": panel.threshold})
        custom["thresholdsStyle"] = {"mode": "line"}
    return {"defaults": {"unit": panel.unit, "thresholds": {"mode": "absolute", "steps": steps}, "custom": custom}, "overrides": []}


def _layout(all_panels: list[Panel]) -> list[dict[str, int]]:
    """Left to right, wrapping at Grafana's 24 columns, 8 rows high each."""
    x = y = 0
    grid = []
    for panel in all_panels:
        if x + panel.width > WIDTH:
            x, y = 0, y + 8
        grid.append({"x": x, "y": y, "w": panel.width, "h": 8})
        x += panel.width
    return grid


def dashboard(spec: MonitoringSpec) -> dict[str, Any]:
    all_panels = panels(spec)
    rendered = []
    for number_, (panel, grid) in enumerate(zip(all_panels, _layout(all_panels)), start=1):
        rendered.append({
            "id": number_,
            "type": panel.kind,
            "title": panel.title,
            "description": panel.description,
            "datasource": DATASOURCE,
            "gridPos": grid,
            "fieldConfig": _field_config(panel),
            "options": {"showHeader": True} if panel.kind == "table" else {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "datasource": DATASOURCE,
                    "expr": q.expr,
                    "legendFormat": q.legend,
                    "instant": q.instant,
                    "range": not q.instant,
                    **({"format": "table"} if q.instant else {}),
                }
                for i, q in enumerate(panel.queries)
            ],
        })
    return {
        "uid": f"modelship-{spec.environment}"[:40],
        "title": f"modelship ({spec.environment})",
        "tags": ["modelship", spec.environment],
        "timezone": "utc",
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0}
            ]
        },
        "annotations": {"list": []},
        "panels": rendered,
    }
