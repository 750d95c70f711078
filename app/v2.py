"""Open Inference Protocol V2 (KServe V2) REST: server and model health, metadata and infer."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

import app
from app.errors import ProtocolError
from app.http import JSON, read_json
from app.rows import checked, numeric
from app.served import ServedModel

# Datatypes whose values are numbers; the model computes in FP32 and converts the rest.
NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
DATATYPES = NUMERIC | {"BOOL", "BYTES"}


class RequestInput(BaseModel):
    name: str
    shape: list[int] = Field(description="[batch, n_features]")
    datatype: str = Field(description="FP32 (any numeric V2 datatype is converted to FP32)")
    parameters: Optional[dict[str, Any]] = None
    # Checked and converted by numpy, not element by element here (that would cost more than the model).
    data: Any = Field(json_schema_extra={"type": "array", "items": {}, "description": "row-major values, flat or nested"})


class RequestOutput(BaseModel):
    name: str
    parameters: Optional[dict[str, Any]] = None


class InferenceRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None
    inputs: list[RequestInput]
    outputs: Optional[list[RequestOutput]] = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: Optional[str] = None
    id: Optional[str] = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    extensions: list[str]


def served(request: Request) -> ServedModel:
    model: ServedModel = request.app.state.model
    name = request.path_params["name"]
    version = request.path_params.get("version")
    if name != model.name:
        raise ProtocolError(404, f"model {name!r} not found (this server serves {model.name!r})")
    if version is not None and version != model.version:
        raise ProtocolError(404, f"model {name!r} has no version {version!r} (it has {model.version!r})")
    return model


async def server_metadata(request: Request) -> Response:
    return JSON(ServerMetadata(name="modelship", version=app.__version__, extensions=[]).model_dump())


async def live(request: Request) -> Response:
    return JSON({"live": True})


async def ready(request: Request) -> Response:
    is_ready = request.app.state.model.ready
    return JSON({"ready": is_ready}, status_code=200 if is_ready else 503)


async def model_ready(request: Request) -> Response:
    model = served(request)
    return JSON({"name": model.name, "ready": model.ready}, status_code=200 if model.ready else 503)


async def model_metadata(request: Request) -> Response:
    model = served(request)
    p = model.predictor
    return JSON(
        ModelMetadata(
            name=model.name,
            versions=[model.version],
            platform=f"{model.entry.format}_litert",
            inputs=[TensorMetadata(name=p.input_name, datatype="FP32", shape=[-1, p.n_features])],
            outputs=[TensorMetadata(name=p.output_name, datatype="FP32", shape=[-1, p.n_classes])],
        ).model_dump()
    )


async def infer(request: Request) -> Response:
    model = served(request)
    if request.headers.get("inference-header-content-length") is not None:
        raise ProtocolError(400, "the binary tensor data extension is not supported: send JSON tensors")
    body: InferenceRequest = await read_json(request, request.app.state.settings.max_body_bytes, InferenceRequest)
    p = model.predictor
    if len(body.inputs) != 1:
        raise ProtocolError(400, f"the model has one input ({p.input_name!r}), got {len(body.inputs)} inputs")
    for out in body.outputs or ():
        if out.name != p.output_name:
            raise ProtocolError(400, f"unknown output {out.name!r}: the model has one output, {p.output_name!r}")
    rows = _rows(body.inputs[0], p.n_features, model.max_batch)
    probabilities = model.predict(rows)
    response: dict[str, Any] = {
        "model_name": model.name,
        "model_version": model.version,
        "outputs": [{"name": p.output_name, "shape": list(probabilities.shape), "datatype": "FP32", "data": probabilities.ravel()}],
    }
    if body.id is not None:
        response["id"] = body.id
    return JSON(response)


def _rows(tensor: RequestInput, n_features: int, max_batch: int) -> np.ndarray:
    # The name is not checked: the model has a single input, and clients name it as they like.
    where = f"input {tensor.name!r}"
    if tensor.datatype not in NUMERIC:
        known = "is not a V2 datatype" if tensor.datatype not in DATATYPES else "is not accepted"
        raise ProtocolError(400, f"{where}: datatype {tensor.datatype!r} {known}; the model takes FP32")
    if len(tensor.shape) != 2 or tensor.shape[1] != n_features or tensor.shape[0] < 0:
        raise ProtocolError(400, f"{where}: shape must be [batch, {n_features}], got {tensor.shape}")
    array = numeric(tensor.data, where)
    if array.size != math.prod(tensor.shape):
        raise ProtocolError(400, f"{where}: shape {tensor.shape} needs {math.prod(tensor.shape)} values, data has {array.size}")
    return checked(array.reshape(tensor.shape), max_batch, where)
