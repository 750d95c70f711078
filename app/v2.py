"""Open Inference Protocol V2 (KServe V2) REST: server and model health, metadata and infer."""
from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr, Strict
from starlette.requests import Request
from starlette.responses import Response

import app
from app.entry import Tensor
from app.errors import ProtocolError
from app.http import JSON, read_json
from app.served import served
from app.tensors import checked, dims, numeric

# V2 datatypes whose values are numbers; a float32 input takes any of them (converted), an int32 input the integer ones.
INTEGER = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
NUMERIC = ("FP16", "FP32", "FP64", *INTEGER)
DATATYPES = {*NUMERIC, "BOOL", "BYTES"}
ACCEPTED = {"float32": NUMERIC, "int32": INTEGER}
NAMES = {"float32": "FP32", "int32": "INT32"}


def _integral(value: Any) -> Any:
    # JSON Schema's `integer` (what /openapi.json says) holds 3.0 as well as 3.
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A whole number, as JSON Schema's `integer`: not a string, not a boolean, not a fraction.
Whole = Annotated[int, Strict(), BeforeValidator(_integral)]


class _Strict(BaseModel):
    # Strict: no string-to-number coercion the schema would not allow. Unknown fields pass, as in KServe.
    model_config = ConfigDict(strict=True)


class RequestInput(_Strict):
    name: StrictStr
    shape: list[Whole]
    datatype: StrictStr
    parameters: dict[str, Any] = {}
    # Checked and converted by numpy, not element by element here (that would cost more than the model).
    data: Any


class RequestOutput(_Strict):
    name: StrictStr
    parameters: dict[str, Any] = {}


class InferenceRequest(_Strict):
    """Optional fields may be left out but are never null; the schema is app/openapi.py's."""

    id: StrictStr = ""
    parameters: dict[str, Any] = {}
    inputs: list[RequestInput]
    outputs: list[RequestOutput] = []


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
    inp, out = model.signature.input, model.signature.output
    return JSON(
        ModelMetadata(
            name=model.name,
            versions=[model.version],
            platform=f"{model.entry.format}_litert",
            inputs=[TensorMetadata(name=inp.name, datatype=NAMES[inp.dtype], shape=[-1, *inp.shape])],
            outputs=[TensorMetadata(name=out.name, datatype=NAMES[out.dtype], shape=[-1, *out.shape])],
        ).model_dump()
    )


async def infer(request: Request) -> Response:
    model = served(request)
    if request.headers.get("inference-header-content-length") is not None:
        raise ProtocolError(400, "the binary tensor data extension is not supported: send JSON tensors")
    body, maybe_booleans = await read_json(request, InferenceRequest)
    inp, out = model.signature.input, model.signature.output
    if len(body.inputs) != 1:
        raise ProtocolError(400, f"the model has one input ({inp.name!r}), got {len(body.inputs)} inputs")
    for requested in body.outputs:
        if requested.name != out.name:
            raise ProtocolError(400, f"unknown output {requested.name!r}: the model has one output, {out.name!r}")
    outputs = model.predict(_batch(body.inputs[0], inp, model.max_batch, maybe_booleans))
    response: dict[str, Any] = {
        "model_name": model.name,
        "model_version": model.version,
        "outputs": [{"name": out.name, "shape": list(outputs.shape), "datatype": NAMES[out.dtype], "data": outputs.ravel()}],
    }
    if "id" in body.model_fields_set:
        response["id"] = body.id
    return JSON(response)


def _batch(tensor: RequestInput, spec: Tensor, max_batch: int, maybe_booleans: bool) -> np.ndarray:
    if tensor.name != spec.name:
        # As Triton and KServe: a misnamed input is a client bug, not something to guess around.
        raise ProtocolError(400, f"unknown input {tensor.name!r}: the model's input is named {spec.name!r}")
    where = f"input {tensor.name!r}"
    accepted = ACCEPTED[spec.dtype]
    if tensor.datatype not in accepted:
        known = "is not a V2 datatype" if tensor.datatype not in DATATYPES else "is not accepted"
        raise ProtocolError(400, f"{where}: datatype {tensor.datatype!r} {known}; the model takes {NAMES[spec.dtype]} "
                                 f"(or {', '.join(t for t in accepted if t != NAMES[spec.dtype])})")
    expected = [*spec.shape]
    if len(tensor.shape) != 1 + len(expected) or tensor.shape[1:] != expected or tensor.shape[0] < 0:
        raise ProtocolError(400, f"{where}: shape must be {dims(spec)}, got {tensor.shape}")
    array = numeric(tensor.data, where, maybe_booleans)
    size = math.prod(tensor.shape)
    if array.size != size:
        raise ProtocolError(400, f"{where}: shape {tensor.shape} needs {size} values, data has {array.size}")
    if array.shape not in ((size,), tuple(tensor.shape)):
        raise ProtocolError(400, f"{where}: data must be flat or nested as shape {tensor.shape}, got nesting {list(array.shape)}")
    return checked(array.reshape(tensor.shape), spec, max_batch, where)
