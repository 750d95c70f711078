"""The stack outputs: where the endpoint is, what it serves, why it was allowed to, and how to call it."""
from __future__ import annotations

import json
from typing import Optional

import pulumi

from infra.gate import GATE_OUTPUT, GatedModel
from infra.monitoring import Monitoring

MODEL_NAME = "model"


def curl_command(endpoint: str, n_features: Optional[int], auth: bool) -> str:
    header = ' -H "Authorization: Bearer $MODELSHIP_TOKEN"' if auth else ""
    if n_features is None:
        # A promoted image's feature count is in its metadata: ask the server.
        return f"curl -s{header} {endpoint}/v2/models/{MODEL_NAME}"
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, n_features], "datatype": "FP32", "data": [0.0] * n_features}]},
        separators=(",", ":"),
    )
    return (
        f"curl -s{header} -H 'Content-Type: application/json' "
        f"-d '{body}' {endpoint}/v2/models/{MODEL_NAME}/infer"
    )


def export(
    endpoint: pulumi.Input[str], image_ref: pulumi.Input[str], model: GatedModel, auth: bool, monitoring: Optional[Monitoring] = None
) -> None:
    pulumi.export("endpoint", endpoint)
    pulumi.export("imageRef", image_ref)
    pulumi.export("modelId", model.model_id)
    pulumi.export(GATE_OUTPUT, model.record())
    pulumi.export("metrics", model.metrics())
    pulumi.export("curl", pulumi.Output.from_input(endpoint).apply(lambda url: curl_command(url, model.n_features, auth)))
    if monitoring is not None:
        # None under the Prometheus Operator: the cluster's own Prometheus evaluates the rules.
        pulumi.export("prometheusUrl", monitoring.prometheus_url)
        pulumi.export("dashboard", monitoring.dashboard)
