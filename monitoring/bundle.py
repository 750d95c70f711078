"""Every file one stack's monitoring is made of, rendered from its `MonitoringSpec`."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from monitoring.alertmanager import alertmanager_config
from monitoring.dashboard import dashboard
from monitoring.prometheus import RULES_FILE, prometheus_config
from monitoring.rules import rule_file
from monitoring.spec import MonitoringSpec

PROMETHEUS_FILE = "prometheus.yml"
ALERTMANAGER_FILE = "alertmanager.yml"
DASHBOARD_FILE = "dashboard.json"


def to_yaml(document: object) -> str:
    # Wide lines: a PromQL expression folded over several YAML lines is hard to read and to grep.
    return yaml.safe_dump(document, sort_keys=False, width=10_000, allow_unicode=True)


@dataclass(frozen=True)
class Bundle:
    prometheus: str
    rules: str
    alertmanager: str
    dashboard: str

    def files(self) -> dict[str, str]:
        """File name -> text; Prometheus expects its rules file beside its config."""
        return {
            PROMETHEUS_FILE: self.prometheus,
            RULES_FILE: self.rules,
            ALERTMANAGER_FILE: self.alertmanager,
            DASHBOARD_FILE: self.dashboard,
        }

    def write(self, directory: Path) -> dict[str, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, text in self.files().items():
            path = directory / name
            path.write_text(text)
            written[name] = path
        return written


def render(spec: MonitoringSpec, prometheus_address: str = "localhost:9090") -> Bundle:
    """`prometheus_address`: where Prometheus scrapes itself (its own listen address)."""
    return Bundle(
        prometheus=to_yaml(prometheus_config(spec, prometheus_address)),
        rules=to_yaml(rule_file(spec)),
        alertmanager=to_yaml(alertmanager_config(spec)),
        dashboard=json.dumps(dashboard(spec), indent=2) + "\n",
    )
