"""The Alertmanager config: one route to one receiver (a webhook, or none), and an inhibition."""
from __future__ import annotations

from typing import Any

from monitoring.spec import MonitoringSpec

RECEIVER = "default"


def alertmanager_config(spec: MonitoringSpec) -> dict[str, Any]:
    a = spec.alerting
    receiver: dict[str, Any] = {"name": RECEIVER}
    if a.webhook_url:
        receiver["webhook_configs"] = [{"url": a.webhook_url, "send_resolved": True}]
    return {
        "route": {
            "receiver": RECEIVER,
            "group_by": ["alertname", "environment", "job"],
            "group_wait": a.group_wait,
            "group_interval": a.group_interval,
            "repeat_interval": a.repeat_interval,
        },
        "receivers": [receiver],
        # A down endpoint also looks idle and slow: page for the cause only.
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="ModelEndpointDown"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["environment", "job"],
            }
        ],
    }
