"""What the monitoring of one stack is made from: a pydantic tree, plain values only (no Pulumi).

Every generated file (scrape config, rules, Alertmanager config, dashboard) is a pure function of a
`MonitoringSpec`; tests build one with short windows, stacks build one from their config.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from app.entry import Task
from model.config import DEFAULT_TASK

# Prometheus durations as the rules and configs take them ("30s", "5m", "1h"); one unit keeps them comparable.
Duration = Annotated[str, Field(pattern=r"^[0-9]+(ms|s|m|h|d)$")]
LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]

_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> float:
    """A Prometheus duration ("5m") in seconds."""
    unit = "ms" if duration.endswith("ms") else duration[-1]
    return int(duration[: -len(unit)]) * _SECONDS[unit]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Slo(_Model):
    """The service level objectives the alerts and the dashboard measure against."""

    # Share of inference requests answered without a 5xx; 1 - availability is the tolerated error ratio.
    availability: float = Field(0.99, gt=0, lt=1)
    latency_p99_seconds: float = Field(0.25, gt=0)

    @property
    def error_ratio(self) -> float:
        # Rounded so the threshold reads "0.01", not "0.010000000000000009", in rules and alerts.
        return round(1 - self.availability, 9)


class Drift(_Model):
    """Live traffic against the training statistics the server exposes as `modelship_reference_*`."""

    window: Duration = "30m"
    # Population stability index of the predictions (classes, or a regression's quantile bins) against
    # training; 0.1 is a shift worth a look, 0.25 a large one.
    prediction_psi: float = Field(0.2, gt=0)
    # Largest tolerated population stability index of any monitored input feature over its reference bins.
    input_psi: float = Field(0.2, gt=0)
    # Keeps ln() finite for a class or bin that has no rows in the window.
    psi_epsilon: float = Field(1e-4, gt=0, lt=0.01)
    # Drift is only judged on this many rows in the window: a handful of requests proves nothing.
    min_rows: int = Field(200, ge=1)


class Traffic(_Model):
    """Whether the endpoint should see inference traffic at all (prod: yes; a dev stack: usually not)."""

    expected: bool = False
    # Requests per second at or below which an expected endpoint counts as idle.
    min_rps: float = Field(0.0, ge=0)


class Timing(_Model):
    scrape_interval: Duration = "15s"
    evaluation_interval: Duration = "15s"
    # Rate window of the service alerts (errors, latency, traffic).
    window: Duration = "5m"
    # How long a condition must hold before its alert fires (the endpoint-down alert has its own).
    pending: Duration = "5m"
    down_pending: Duration = "1m"
    drift_pending: Duration = "15m"


class StaticTargets(_Model):
    kind: Literal["static"] = "static"
    addresses: list[str] = Field(min_length=1)


class DnsTargets(_Model):
    """Every address a DNS name resolves to, re-resolved as it changes: on Kubernetes, a headless Service
    names each ready pod, so each replica is scraped on its own and its counters stay per process (the
    Service's virtual address would reach a different pod on each scrape). Needs no API access (Debian's
    Prometheus is built without Kubernetes discovery)."""

    kind: Literal["dns"] = "dns"
    names: list[str] = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    refresh_interval: Duration = "15s"


Targets = Annotated[Union[StaticTargets, DnsTargets], Field(discriminator="kind")]


class Alerting(_Model):
    alertmanagers: list[str] = Field(default_factory=lambda: ["alertmanager:9093"])
    # None: alerts are grouped and held in Alertmanager (its UI and `amtool alert` show them), sent nowhere.
    webhook_url: Optional[str] = None
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"


class MonitoringSpec(_Model):
    environment: str = Field(min_length=1)
    expected_model_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    # The served model's task (report.json `task`): which prediction series the server exposes.
    task: Task = DEFAULT_TASK
    targets: Targets
    job: LabelName = "modelship"
    # The reverse proxy in front of the servers, scraped as its own job: requests per status, retries,
    # redispatches, servers up per backend.
    proxy_targets: Optional[Targets] = None
    # A label value (Prometheus job names may hold dashes), not a label name like `job`'s own type says.
    proxy_job: str = Field("modelship-proxy", pattern=r"^[a-zA-Z0-9_.-]+$")
    # Route templates (anchored regex) that the service alerts measure: inference, not probes or scrapes.
    inference_routes: str = r".*/infer|.*:predict"
    slo: Slo = Slo()
    drift: Drift = Drift()
    traffic: Traffic = Traffic()
    timing: Timing = Timing()
    alerting: Alerting = Alerting()

    @property
    def classifies(self) -> bool:
        """Classification servers count predicted classes; a regression server counts prediction bins."""
        return self.task != "regression"
