"""The stack outputs: where the endpoint is, what it serves, why it was allowed to, and how to call it."""
from __future__ import annotations

import json
import math
from typing import Optional

import pulumi

from app.entry import Signature
from infra.gate import GATE_OUTPUT, GatedModel
from infra.monitoring import Monitoring

MODEL_NAME = "model"
V2_DATATYPES = {"float32": "FP32", "int32": "INT32"}


def curl_command(endpoint: str, signature: Optional[Signature], auth: bool) -> str:
    """A request a user can paste: one all-zero input of the model's real name, dtype and shape."""
    header = ' -H "Authorization: Bearer $MODELSHIP_TOKEN"' if auth else ""
    if signature is None:
        # A promoted image's input is in its metadata: ask the server.
        return f"curl -s{header} {endpoint}/v2/models/{MODEL_NAME}"
    spec = signature.input
    zero = 0 if spec.dtype == "int32" else 0.0
    body = json.dumps(
        {"inputs": [{"name": spec.name, "shape": [1, *spec.shape], "datatype": V2_DATATYPES[spec.dtype],
                     "data": [zero] * math.prod(spec.shape)}]},
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
    pulumi.export("task", model.task)
    pulumi.export(GATE_OUTPUT, model.record())
    pulumi.export("metrics", model.metrics())
    pulumi.export("curl", pulumi.Output.from_input(endpoint).apply(lambda url: curl_command(url, model.signature, auth)))
    if monitoring is not None:
        # None under the Prometheus Operator: the cluster's own Prometheus evaluates the rules.
        pulumi.export("prometheusUrl", monitoring.prometheus_url)
        pulumi.export("dashboard", monitoring.dashboard)
