"""/openapi.json: made from the route table, the model's signature and the metadata response models.

The request schemas state the server's own rules (app/tensors.py, app/tfserving.py, app/v2.py) for this
model's input name, shape and dtype, so that a body the document accepts is one the server accepts and the
reverse (tests/app/test_openapi_fuzz.py holds them to it). One rule JSON Schema cannot state: a V2 input's
`data` holds exactly the product of its `shape` (the description says so).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import app
from app.entry import Signature, Tensor
from app.settings import Settings
from app.tensors import FLOAT32_MAX, INT32_MAX, INT32_MIN
from app.tfserving import SIGNATURE
from app.v2 import ACCEPTED, NAMES, ModelMetadata, ServerMetadata

if TYPE_CHECKING:
    from app.server import Operation

_REF = "#/components/schemas/{model}"
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
# Documented from their pydantic models: the server builds these answers, it never parses them.
RESPONSE_MODELS: list[type[BaseModel]] = [ModelMetadata, ServerMetadata]


def document(operations: list["Operation"], settings: Settings, signature: Signature) -> dict[str, Any]:
    _, definitions = models_json_schema([(m, "validation") for m in RESPONSE_MODELS], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, settings)
    schemas = {**definitions.get("$defs", {}), **request_schemas(signature, settings.max_batch),
               **_response_schemas(signature), "Error": ERROR}
    components: dict[str, Any] = {"schemas": schemas}
    if settings.auth_token is not None:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelship model server", "version": app.__version__,
                 "description": f"Model {settings.model_name!r} over TensorFlow Serving REST and Open Inference Protocol V2."},
        "paths": paths,
        "components": components,
    }


def _value(dtype: str) -> dict[str, Any]:
    if dtype == "int32":
        return {"type": "integer", "minimum": INT32_MIN, "maximum": INT32_MAX}
    return {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}


def _nested(shape: list[int], leaf: dict[str, Any]) -> dict[str, Any]:
    """Arrays nested as `shape`, each of exactly its size."""
    for size in reversed(shape):
        leaf = {"type": "array", "minItems": size, "maxItems": size, "items": leaf}
    return leaf


def _batch(spec: Tensor, max_batch: int) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "maxItems": max_batch, "items": _nested(spec.shape, _value(spec.dtype)),
            "description": f"{spec.dtype} tensor [batch, {', '.join(map(str, spec.shape))}], batch 1 to {max_batch}"}


def _named(spec: Tensor, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [spec.name], "additionalProperties": False, "properties": {spec.name: schema}}


def request_schemas(signature: Signature, max_batch: int) -> dict[str, dict[str, Any]]:
    """The two request bodies, for this model's input (also what the fuzz test generates bodies from)."""
    spec = signature.input
    instance = _nested(spec.shape, _value(spec.dtype))
    instances = {"oneOf": [_batch(spec, max_batch),
                           {"type": "array", "minItems": 1, "maxItems": max_batch, "items": _named(spec, instance)}],
                 "description": "row format: one entry per instance, each the input's shape or keyed by its name"}
    inputs = {"oneOf": [_batch(spec, max_batch), _named(spec, _batch(spec, max_batch))],
              "description": "columnar format: the input tensor, or an object keyed by its name"}
    predict = {
        "type": "object", "additionalProperties": False,
        "properties": {"signature_name": {"const": SIGNATURE}, "instances": instances, "inputs": inputs},
        "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
    }
    size = math.prod(spec.shape)
    shape = {"type": "array", "minItems": 1 + len(spec.shape), "maxItems": 1 + len(spec.shape), "items": False,
             "prefixItems": [{"type": "integer", "minimum": 1, "maximum": max_batch}, *({"const": d} for d in spec.shape)]}
    tensor = {
        "type": "object", "required": ["name", "shape", "datatype", "data"],
        "description": f"`data` holds the product of `shape` values ({size} per instance), flat in row-major order or nested as `shape`",
        "properties": {
            "name": {"const": spec.name},
            "shape": shape,
            "datatype": {"enum": list(ACCEPTED[spec.dtype])},
            "parameters": {"type": "object"},
            "data": {"oneOf": [{"type": "array", "minItems": size, "maxItems": max_batch * size, "items": _value(spec.dtype)},
                               _batch(spec, max_batch)]},
        },
    }
    output = {"type": "object", "required": ["name"],
              "properties": {"name": {"const": signature.output.name}, "parameters": {"type": "object"}}}
    infer = {
        "type": "object", "required": ["inputs"],
        "properties": {"id": {"type": "string"}, "parameters": {"type": "object"},
                       "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": tensor},
                       "outputs": {"type": "array", "items": output}},
    }
    return {"PredictRequest": predict, "InferenceRequest": infer}


def _response_schemas(signature: Signature) -> dict[str, dict[str, Any]]:
    out = signature.output
    outputs = {"type": "array", "items": _nested(out.shape, {"type": "number"}),
               "description": f"the model's output [batch, {', '.join(map(str, out.shape))}]"}
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"],
              "properties": {"name": {"const": out.name}, "shape": {"type": "array", "items": {"type": "integer"}},
                             "datatype": {"const": NAMES[out.dtype]}, "data": {"type": "array", "items": {"type": "number"}}}}
    return {
        "PredictResponse": {"type": "object", "properties": {"predictions": outputs, "outputs": outputs}},
        "InferenceResponse": {"type": "object", "required": ["model_name", "outputs"],
                              "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"},
                                             "id": {"type": "string"}, "outputs": {"type": "array", "items": tensor}}},
    }


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _operation(op: "Operation", settings: Settings) -> dict[str, Any]:
    if op.response is not None:
        success = _json(_ref(op.response))
    elif op.media_type == "application/json":
        success = _json({"type": "object"})
    else:
        success = {"content": {op.media_type: {"schema": {"type": "string"}}}}
    responses: dict[str, Any] = {"200": {"description": "success", **success},
                                 "default": {"description": "error, in the protocol's own format", **_json(_ref("Error"))}}
    spec: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.method.lower() + "".join(c if c.isalnum() else "_" for c in op.path),
        "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                       for p in ("name", "version") if "{" + p + "}" in op.path],
        "responses": responses,
    }
    if op.request is not None:
        spec["requestBody"] = {"required": True, **_json(_ref(op.request))}
        responses["408"] = {"description": f"body not received within {settings.body_timeout_seconds:g} s (BODY_TIMEOUT_SECONDS)",
                            **_json(_ref("Error"))}
        responses["413"] = {"description": f"body over {settings.max_body_bytes} bytes (MAX_BODY_BYTES)", **_json(_ref("Error"))}
    if settings.auth_token is not None and not op.open:
        spec["security"] = [{"bearer": []}]
        responses["401"] = {"description": "missing or invalid bearer token", **_json(_ref("Error"))}
    return spec
