"""/openapi.json: made from the route table and the pydantic request and response models."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic.json_schema import models_json_schema

import app
from app.settings import Settings

if TYPE_CHECKING:
    from app.server import Operation

_REF = "#/components/schemas/{model}"
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def document(operations: list["Operation"], settings: Settings) -> dict[str, Any]:
    models = sorted({m for op in operations for m in (op.request, op.response) if m is not None}, key=lambda m: m.__name__)
    _, definitions = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, settings)
    components: dict[str, Any] = {"schemas": {**definitions.get("$defs", {}), "Error": ERROR}}
    if settings.auth_token is not None:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelship model server", "version": app.__version__,
                 "description": f"Model {settings.model_name!r} over TensorFlow Serving REST and Open Inference Protocol V2."},
        "paths": paths,
        "components": components,
    }


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _operation(op: "Operation", settings: Settings) -> dict[str, Any]:
    if op.response is not None:
        success = _json(_ref(op.response.__name__))
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
        spec["requestBody"] = {"required": True, **_json(_ref(op.request.__name__))}
        responses["413"] = {"description": f"body over {settings.max_body_bytes} bytes (MAX_BODY_BYTES)", **_json(_ref("Error"))}
    if settings.auth_token is not None and not op.open:
        spec["security"] = [{"bearer": []}]
        responses["401"] = {"description": "missing or invalid bearer token", **_json(_ref("Error"))}
    return spec
