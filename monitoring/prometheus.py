"""The Prometheus server config: scrape the model server, load the rules, send alerts to Alertmanager."""
from __future__ import annotations

from typing import Any

from monitoring.spec import MonitoringSpec, StaticTargets, Targets

RULES_FILE = "rules.yml"
METRICS_PATH = "/metrics"


def _discovery(targets: Targets) -> dict[str, Any]:
    if isinstance(targets, StaticTargets):
        return {"static_configs": [{"targets": list(targets.addresses)}]}
    return {"dns_sd_configs": [
        {"names": list(targets.names), "type": "A", "port": targets.port, "refresh_interval": targets.refresh_interval}
    ]}


def scrape_config(spec: MonitoringSpec) -> dict[str, Any]:
    """The scrape job for the model server (also what a `ServiceMonitor` replaces under the Operator)."""
    return {"job_name": spec.job, "metrics_path": METRICS_PATH, **_discovery(spec.targets)}


def prometheus_config(spec: MonitoringSpec, self_address: str = "localhost:9090") -> dict[str, Any]:
    t = spec.timing
    return {
        "global": {
            "scrape_interval": t.scrape_interval,
            "evaluation_interval": t.evaluation_interval,
            "external_labels": {"environment": spec.environment},
        },
        # Relative to this file's directory: the two are deployed side by side.
        "rule_files": [RULES_FILE],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": list(spec.alerting.alertmanagers)}]}]},
        "scrape_configs": [
            scrape_config(spec),
            *proxy_scrape_configs(spec),
            {"job_name": "prometheus", "static_configs": [{"targets": [self_address]}]},
        ],
    }


def proxy_scrape_configs(spec: MonitoringSpec) -> list[dict[str, Any]]:
    """The reverse proxy's exporter, without its per-server series: the proxy has a slot for every container a
    rollout may run, and the servers' own metrics are scraped from each server."""
    if spec.proxy_targets is None:
        return []
    return [{
        "job_name": spec.proxy_job,
        "metrics_path": METRICS_PATH,
        "params": {"scope": ["global", "frontend", "backend"]},
        **_discovery(spec.proxy_targets),
    }]
