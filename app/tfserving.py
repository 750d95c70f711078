"""TensorFlow Serving REST API: model status, metadata and predict (row and columnar formats)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr
from starlette.requests import Request
from starlette.responses import Response

from app.errors import ProtocolError
from app.http import JSON, read_json
from app.served import served
from app.tensors import batch

SIGNATURE = "serving_default"
DTYPES = {"float32": "DT_FLOAT", "int32": "DT_INT32"}


class PredictRequest(BaseModel):
    """Exactly one of `instances` (row format) or `inputs` (columnar format); the schema is app/openapi.py's."""

    model_config = ConfigDict(extra="forbid", strict=True)
    signature_name: StrictStr = SIGNATURE
    # A (nested) list of numbers; its shape and values are checked by app.tensors, not here.
    instances: Any = None
    inputs: Any = None


async def status(request: Request) -> Response:
    model = served(request)
    return JSON(
        {"model_version_status": [{"version": model.version, "state": "AVAILABLE" if model.ready else "LOADING",
                                   "status": {"error_code": "OK", "error_message": ""}}]}
    )


async def metadata(request: Request) -> Response:
    model = served(request)

    def tensor(name: str, dtype: str, shape: list[int]) -> dict[str, Any]:
        dims = [{"size": str(size), "name": ""} for size in (-1, *shape)]
        return {"dtype": DTYPES[dtype], "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": name}

    inp, out = model.signature.input, model.signature.output
    signature = {"inputs": {inp.name: tensor(inp.name, inp.dtype, inp.shape)},
                 "outputs": {out.name: tensor(out.name, out.dtype, out.shape)},
                 "method_name": "tensorflow/serving/predict"}
    return JSON({"model_spec": {"name": model.name, "signature_name": "", "version": model.version},
                 "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}}})


async def predict(request: Request) -> Response:
    model = served(request)
    body, maybe_booleans = await read_json(request, PredictRequest)
    if body.signature_name != SIGNATURE:
        raise ProtocolError(400, f"Serving signature name: {body.signature_name!r} not found in signature def (use {SIGNATURE!r})")
    given = body.model_fields_set & {"instances", "inputs"}
    if len(given) != 1:
        raise ProtocolError(400, "send exactly one of `instances` (row format) or `inputs` (columnar format)")
    spec = model.signature.input
    if "instances" in given:
        instances = body.instances
        if isinstance(instances, list) and instances and isinstance(instances[0], dict):
            instances = [_named(row, spec.name, f"instances[{i}]") for i, row in enumerate(instances)]
        outputs = model.predict(batch(instances, spec, model.max_batch, "instances", maybe_booleans))
        return JSON({"predictions": outputs})
    inputs = _named(body.inputs, spec.name, "inputs") if isinstance(body.inputs, dict) else body.inputs
    return JSON({"outputs": model.predict(batch(inputs, spec, model.max_batch, "inputs", maybe_booleans))})


async def not_predict(request: Request) -> Response:
    """`:classify` and `:regress` take tf.Example features, which a TFLite model has no signature for."""
    model = served(request)
    method = request.url.path.rsplit(":", 1)[-1]
    raise ProtocolError(501, f"{method} is not served: model {model.name!r} is served through :predict only "
                             f"(POST /v1/models/{model.name}:predict with `instances` or `inputs`)")


def _named(value: Any, input_name: str, where: str) -> Any:
    """`{"<input name>": tensor}`: the model has one input, so one key, and it must be that name."""
    if not isinstance(value, dict):
        raise ProtocolError(400, f"{where}: expected an object keyed by input name {input_name!r}")
    if list(value) != [input_name]:
        raise ProtocolError(400, f"{where}: the model has one input named {input_name!r}, got keys {sorted(value)}")
    return value[input_name]
