"""TensorFlow Serving REST API: model status, metadata and predict (row and columnar formats)."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from app.errors import ProtocolError
from app.http import JSON, read_json
from app.rows import as_rows
from app.served import ServedModel

SIGNATURE = "serving_default"

Tensor = Any  # a (nested) list of numbers; its shape and values are checked by app.rows, not here


class PredictRequest(BaseModel):
    """Exactly one of `instances` (row format) or `inputs` (columnar format)."""

    model_config = ConfigDict(extra="forbid")
    signature_name: Optional[str] = None
    instances: Optional[Tensor] = Field(None, json_schema_extra={"type": "array", "items": {}})
    inputs: Optional[Tensor] = Field(None, json_schema_extra={"anyOf": [{"type": "array"}, {"type": "object"}]})


class PredictResponse(BaseModel):
    predictions: Optional[list[list[float]]] = Field(None, description="for `instances`: one probability row per instance")
    outputs: Optional[list[list[float]]] = Field(None, description="for `inputs`: the probabilities tensor")


def served(request: Request) -> ServedModel:
    model: ServedModel = request.app.state.model
    name = request.path_params["name"]
    version = request.path_params.get("version")
    if name != model.name or (version is not None and version != model.version):
        wanted = name if version is None else f"{name} version {version}"
        raise ProtocolError(404, f"Servable not found for request: {wanted} (this server serves {model.name} version {model.version})")
    return model


async def status(request: Request) -> Response:
    model = served(request)
    return JSON(
        {"model_version_status": [{"version": model.version, "state": "AVAILABLE" if model.ready else "LOADING",
                                   "status": {"error_code": "OK", "error_message": ""}}]}
    )


async def metadata(request: Request) -> Response:
    model = served(request)
    p = model.predictor

    def tensor(name: str, size: int) -> dict[str, Any]:
        return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": str(size), "name": ""}],
                                                      "unknown_rank": False}, "name": name}

    signature = {"inputs": {p.input_name: tensor(p.input_name, p.n_features)},
                 "outputs": {p.output_name: tensor(p.output_name, p.n_classes)},
                 "method_name": "tensorflow/serving/predict"}
    return JSON({"model_spec": {"name": model.name, "signature_name": "", "version": model.version},
                 "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}}})


async def predict(request: Request) -> Response:
    model = served(request)
    body: PredictRequest = await read_json(request, request.app.state.settings.max_body_bytes, PredictRequest)
    if body.signature_name not in (None, SIGNATURE):
        raise ProtocolError(400, f"Serving signature name: {body.signature_name!r} not found in signature def (use {SIGNATURE!r})")
    row_format = body.instances is not None
    if row_format == (body.inputs is not None):
        raise ProtocolError(400, "send exactly one of `instances` (row format) or `inputs` (columnar format)")
    p = model.predictor
    if row_format:
        instances = body.instances
        if isinstance(instances, list) and instances and isinstance(instances[0], dict):
            instances = [_named(row, p.input_name, f"instances[{i}]") for i, row in enumerate(instances)]
        rows = as_rows(instances, p.n_features, model.max_batch, "instances")
    else:
        inputs = _named(body.inputs, p.input_name, "inputs") if isinstance(body.inputs, dict) else body.inputs
        rows = as_rows(inputs, p.n_features, model.max_batch, "inputs")
    probabilities = model.predict(rows)
    return JSON({"predictions": probabilities} if row_format else {"outputs": probabilities})


def _named(value: Any, input_name: str, where: str) -> Any:
    """`{"<input name>": tensor}`: the model has one input, so one key, and it must be that name."""
    if not isinstance(value, dict):
        raise ProtocolError(400, f"{where}: expected an object keyed by input name {input_name!r}")
    if list(value) != [input_name]:
        raise ProtocolError(400, f"{where}: the model has one input named {input_name!r}, got keys {sorted(value)}")
    return value[input_name]
