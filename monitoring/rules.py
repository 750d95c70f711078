"""Recording and alerting rules for one stack, from its `MonitoringSpec`.

The recording rules name the quantities (error ratio, p99, live shares against training shares, PSI);
the alerts compare them with the spec's thresholds, and the dashboard plots the same series. All rules
are in one group, recordings first: a group evaluates in order, so each alert sees the values recorded
in the same evaluation.

Drift is one computation applied three ways (`Distribution`): live counts per category (a predicted class,
a regression's prediction bin, an input feature's bin) turned into shares over the drift window and
compared with the training shares the server exposes, as a population stability index.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from monitoring.spec import DnsTargets, MonitoringSpec

GROUP = "modelship"

# Recorded series (level:metric:operation); every one keeps the `job` label.
REQUEST_RATE = "job:modelship_inference_requests:rate"
ERROR_RATIO = "job:modelship_inference_errors:ratio"
LATENCY_P99 = "job:modelship_inference_latency_seconds:p99"
ROWS = "job:modelship_input_rows:increase"
# Prediction drift: one PSI series whatever the task, from classes or from the regression's bins.
PSI = "job:modelship_prediction_psi:window"
FEATURE_PSI = "job_feature:modelship_input_psi:window"
MAX_FEATURE_PSI = "job:modelship_input_psi:max"


class RecordingRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    record: str
    expr: str


class AlertRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    runbook: str

    def to_prometheus(self, environment: str) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "environment": environment},
            "annotations": {"summary": self.summary, "description": self.description, "runbook": self.runbook},
        }


def number(value: float) -> str:
    """A threshold as PromQL and people read it: shortest exact form, no float noise."""
    return format(value, ".12g")


def _value(fmt: str = "%.3f") -> str:
    # Go's printf and Python's %-formatting agree on %.Nf, so tests can predict the rendered text.
    return '{{ printf "' + fmt + '" $value }}'


class Selectors:
    """The raw series of one job, as the server names them (docs/contracts.md)."""

    def __init__(self, spec: MonitoringSpec):
        self.job = f'job="{spec.job}"'
        self.routes = f'route=~"{spec.inference_routes}"'

    def __call__(self, metric: str, *matchers: str) -> str:
        return metric + "{" + ",".join((self.job, *matchers)) + "}"


@dataclass(frozen=True)
class Distribution:
    """Live counts per category (`counter`, a counter labelled `category`) against the training share of
    each (`reference`, a gauge with the same labels): the rules of one PSI, recorded as `psi`.

    `per`: labels splitting the series into independent distributions (one per input feature).
    """

    counter: str
    reference: str
    category: str
    psi: str
    per: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return ", ".join(("job", *self.per))

    @property
    def key(self) -> str:
        return ", ".join(("job", *self.per, self.category))

    def _recorded(self, metric: str) -> str:
        level = "_".join(("job", *self.per, self.category))
        return f"{level}:{metric.removesuffix('_total').removesuffix('_ratio')}:share"

    @property
    def share(self) -> str:
        return self._recorded(self.counter)

    @property
    def reference_share(self) -> str:
        return self._recorded(self.reference)

    def live(self) -> str:
        """Live shares, with 0 for a category the window never saw: the reference names every category.
        Only distributions with traffic get them, so an idle one has no index rather than a huge one."""
        return f"({self.share} or ({self.reference_share} * 0 and on({self.group}) {self.share}))"

    def rules(self, s: Selectors, window: str, epsilon: str) -> list[RecordingRule]:
        rate = f"rate({s(self.counter)}[{window}])"
        live, ref, key = self.live(), self.reference_share, self.key
        terms = f"({live} - on({key}) {ref}) * ln(({live} + {epsilon}) / on({key}) ({ref} + {epsilon}))"
        return [
            RecordingRule(
                record=self.share,
                # A distribution without a row in the window has no shares (0/0 is no share).
                expr=f"sum by ({key}) ({rate}) / on({self.group}) group_left() (sum by ({self.group}) ({rate}) > 0)",
            ),
            RecordingRule(record=ref, expr=f"max by ({key}) ({s(self.reference)})"),
            RecordingRule(record=self.psi, expr=f"sum by ({self.group}) ({terms})"),
        ]


CLASSES = Distribution("modelship_predictions_total", "modelship_reference_class_ratio", "class", PSI)
PREDICTION_BINS = Distribution("modelship_prediction_bin_total", "modelship_reference_prediction_bin_ratio", "bin", PSI)
FEATURE_BINS = Distribution(
    "modelship_input_feature_bin_total", "modelship_reference_feature_bin_ratio", "bin", FEATURE_PSI, per=("feature",)
)


def predictions(spec: MonitoringSpec) -> Distribution:
    """What the task's server counts of its predictions (docs/contracts.md)."""
    return CLASSES if spec.classifies else PREDICTION_BINS


def recording_rules(spec: MonitoringSpec) -> list[RecordingRule]:
    s = Selectors(spec)
    w, dw, eps = spec.timing.window, spec.drift.window, number(spec.drift.psi_epsilon)
    requests = s("modelship_requests_total", s.routes)
    errors = s("modelship_requests_total", s.routes, 'status=~"5.."')
    buckets = s("modelship_request_duration_seconds_bucket", s.routes)
    rows = s("modelship_input_rows_total")
    return [
        RecordingRule(record=REQUEST_RATE, expr=f"sum by (job) (rate({requests}[{w}]))"),
        RecordingRule(
            record=ERROR_RATIO,
            expr=f"sum by (job) (rate({errors}[{w}])) / sum by (job) (rate({requests}[{w}]))",
        ),
        RecordingRule(
            record=LATENCY_P99,
            expr=f"histogram_quantile(0.99, sum by (job, le) (rate({buckets}[{w}])))",
        ),
        RecordingRule(record=ROWS, expr=f"sum by (job) (increase({rows}[{dw}]))"),
        *predictions(spec).rules(s, dw, eps),
        *FEATURE_BINS.rules(s, dw, eps),
        RecordingRule(record=MAX_FEATURE_PSI, expr=f"max by (job) ({FEATURE_PSI})"),
    ]


def alert_rules(spec: MonitoringSpec) -> list[AlertRule]:
    s = Selectors(spec)
    t, d, slo = spec.timing, spec.drift, spec.slo
    env, model_id = spec.environment, spec.expected_model_id
    evidence = f"and on(job) {ROWS} >= {d.min_rows}"
    other_model = f'model_id!="{model_id}"'
    predicted = "predicted classes" if spec.classifies else "predictions over their training quantile bins"
    shares = "class shares" if spec.classifies else "prediction bin shares"
    down = f'{s("up")} == 0'
    if isinstance(spec.targets, DnsTargets):
        # A DNS target list (Kubernetes' headless Service, Docker's alias) is empty when no server is ready, which
        # leaves no `up` series at all rather than a failing one. Static targets always have theirs.
        down += f' or absent({s("up")})'
    alerts = [
        AlertRule(
            alert="ModelEndpointDown",
            expr=down,
            for_=t.down_pending,
            severity="critical",
            summary=f"Model endpoint {{{{ $labels.instance }}}} is down ({env})",
            description=f"Prometheus has failed to scrape {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}) for {t.down_pending}.",
            runbook="Check the server's logs and health (docker logs / kubectl logs, GET /v2/health/ready); "
            "a crash loop usually means the model entry or the image is broken: roll back to the previous image.",
        ),
        AlertRule(
            alert="ModelErrorRatioHigh",
            expr=f"{ERROR_RATIO} > {number(slo.error_ratio)}",
            for_=t.pending,
            severity="critical",
            summary=f"Inference error ratio above the SLO ({env})",
            description=f"{_value()} of inference requests answered 5xx over {t.window}; the availability objective "
            f"{number(slo.availability)} allows {number(slo.error_ratio)}.",
            runbook="Look at the server's logs for the failing requests (status 5xx); if a new model or image "
            "came with the errors, roll back to the previous image.",
        ),
        AlertRule(
            alert="ModelLatencyP99High",
            expr=f"{LATENCY_P99} > {number(slo.latency_p99_seconds)}",
            for_=t.pending,
            severity="warning",
            summary=f"Inference p99 latency above the SLO ({env})",
            description=f"p99 latency is {_value()} s over {t.window}; the objective is {number(slo.latency_p99_seconds)} s.",
            runbook="Check CPU saturation and in-flight requests (modelship_requests_in_flight); scale out "
            "(replicas, HPA) or lower the batch size clients send.",
        ),
        AlertRule(
            alert="ModelPredictionDrift",
            expr=f"{PSI} > {number(d.prediction_psi)} {evidence}",
            for_=t.drift_pending,
            severity="warning",
            summary=f"{'Predicted-class' if spec.classifies else 'Prediction'} distribution drifted from training ({env})",
            description=f"Population stability index of the {predicted} over {d.window} is {_value()} "
            f"(threshold {number(d.prediction_psi)}).",
            runbook=f"Compare live and reference {shares} on the dashboard; if the inputs changed for good, "
            "retrain on recent data and promote the new model.",
        ),
        AlertRule(
            alert="ModelInputDrift",
            # The most drifted feature names the alert; the dashboard lists the others.
            expr=f"topk by (job) (1, {FEATURE_PSI}) > {number(d.input_psi)} {evidence}",
            for_=t.drift_pending,
            severity="warning",
            summary=f"Input feature {{{{ $labels.feature }}}} drifted from training ({env})",
            description=f"Population stability index of input feature {{{{ $labels.feature }}}} over its training "
            f"quantile bins is {_value()} over {d.window} (threshold {number(d.input_psi)}).",
            runbook="Compare the feature's live and training bin shares on the dashboard; check the clients' "
            "preprocessing (units, scaling, feature order) before blaming the world; if the data really moved, "
            "retrain on recent data.",
        ),
        AlertRule(
            alert="ModelInfoMismatch",
            expr=f"{s('modelship_model_info', other_model)} == 1",
            for_=t.pending,
            severity="critical",
            summary=f"Serving a model other than the stack's ({env})",
            description=f"{{{{ $labels.instance }}}} serves model {{{{ $labels.model_id }}}}; the stack expects {model_id}.",
            runbook="A rollout is stuck or someone deployed by hand: run `pulumi up` for this stack, "
            "or promote the served model properly.",
        ),
    ]
    if spec.traffic.expected:
        alerts.append(
            AlertRule(
                alert="ModelNoTraffic",
                # Up, yet not serving: an endpoint that is down has its own alert.
                expr=f'sum by (job) ({s("up")}) > 0 unless on(job) {REQUEST_RATE} > {number(spec.traffic.min_rps)}',
                for_=t.pending,
                severity="warning",
                summary=f"No inference traffic on an endpoint that expects it ({env})",
                description=f"Inference requests over {t.window} are at or below {number(spec.traffic.min_rps)} per second "
                "while the endpoint is up.",
                runbook="Check the clients, DNS and the load balancer or ingress in front of the endpoint; "
                "a stuck rollout can also leave traffic on old replicas.",
            )
        )
    return alerts


def rule_file(spec: MonitoringSpec) -> dict[str, Any]:
    """The Prometheus rules file (and `PrometheusRule` spec): one group, recordings then alerts."""
    rules: list[dict[str, Any]] = [r.model_dump() for r in recording_rules(spec)]
    rules += [a.to_prometheus(spec.environment) for a in alert_rules(spec)]
    return {"groups": [{"name": GROUP, "interval": spec.timing.evaluation_interval, "rules": rules}]}
