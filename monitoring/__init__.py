"""Monitoring as code: Prometheus scrape config, alert rules, Alertmanager config and a Grafana dashboard,
all generated from one typed `MonitoringSpec` (no Pulumi here; infra/monitoring.py deploys the result)."""
from monitoring.bundle import Bundle, render
from monitoring.spec import (
    Alerting,
    Drift,
    DnsTargets,
    MonitoringSpec,
    Slo,
    StaticTargets,
    Timing,
    Traffic,
)

__all__ = [
    "Alerting", "Bundle", "DnsTargets", "Drift", "MonitoringSpec", "Slo", "StaticTargets", "Timing", "Traffic", "render",
]
