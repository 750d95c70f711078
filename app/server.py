"""The Starlette application: both protocols' routes, metrics, auth, errors and the model's lifecycle."""
from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Optional

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import openapi, tfserving, v2
from app.errors import ProtocolError
from app.http import CLIENT_CLOSED, JSON, Endpoint, bearer, error
from app.served import ServedModel
from app.settings import Settings

log = logging.getLogger("uvicorn.error")


class _Segment(Convertor[str]):
    """A model name or version: no `/`, and no `:` so that `{name}:predict` is never read as a name."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("segment", _Segment())


@dataclass(frozen=True)
class Operation:
    """One route; the same table makes the router and /openapi.json, so the two cannot drift apart."""

    method: str
    path: str  # OpenAPI form: `{name}`, `{version}`
    endpoint: Endpoint
    summary: str
    request: Optional[str] = None  # schema names in /openapi.json (app/openapi.py)
    response: Optional[str] = None
    open: bool = False  # answered without the bearer token (health and monitoring)
    media_type: str = "application/json"


async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.model.metrics.render()
    return Response(body, media_type=content_type)


async def openapi_json(request: Request) -> Response:
    state = request.app.state
    if state.openapi is None:  # built on first request: its JSON schemas would add to start-up time
        state.openapi = openapi.document(OPERATIONS, state.settings, state.model.signature)
    return JSON(state.openapi)


# The router tries routes in order: the two inference routes first.
OPERATIONS = [
    Operation("POST", "/v2/models/{name}/infer", v2.infer, "V2: inference", "InferenceRequest", "InferenceResponse"),
    Operation("POST", "/v1/models/{name}:predict", tfserving.predict, "TF Serving: predict", "PredictRequest", "PredictResponse"),
    Operation("GET", "/v1/models/{name}", tfserving.status, "TF Serving: model status"),
    Operation("GET", "/v1/models/{name}/versions/{version}", tfserving.status, "TF Serving: model version status"),
    Operation("GET", "/v1/models/{name}/metadata", tfserving.metadata, "TF Serving: signature metadata"),
    Operation("GET", "/v1/models/{name}/versions/{version}/metadata", tfserving.metadata, "TF Serving: version metadata"),
    Operation("POST", "/v1/models/{name}/versions/{version}:predict", tfserving.predict, "TF Serving: predict with a version",
              "PredictRequest", "PredictResponse"),
    *(Operation("POST", f"/v1/models/{{name}}{version}:{method}", tfserving.not_predict,
                f"TF Serving: {method} (501: the model is served through :predict only)")
      for method in ("classify", "regress") for version in ("", "/versions/{version}")),
    Operation("GET", "/v2", v2.server_metadata, "V2: server metadata", response="ServerMetadata"),
    Operation("GET", "/v2/health/live", v2.live, "V2: liveness", open=True),
    Operation("GET", "/v2/health/ready", v2.ready, "V2: readiness (model loaded and warmed up)", open=True),
    Operation("GET", "/v2/models/{name}", v2.model_metadata, "V2: model metadata", response="ModelMetadata"),
    Operation("GET", "/v2/models/{name}/versions/{version}", v2.model_metadata, "V2: model version metadata",
              response="ModelMetadata"),
    Operation("GET", "/v2/models/{name}/ready", v2.model_ready, "V2: model readiness"),
    Operation("GET", "/v2/models/{name}/versions/{version}/ready", v2.model_ready, "V2: model version readiness"),
    Operation("POST", "/v2/models/{name}/versions/{version}/infer", v2.infer, "V2: inference with a version",
              "InferenceRequest", "InferenceResponse"),
    Operation("GET", "/metrics", metrics, "Prometheus metrics", open=True, media_type="text/plain"),
    Operation("GET", "/openapi.json", openapi_json, "This document", open=True),
]


class Observe:
    """Request count, latency and in-flight metrics, labelled by route template (bounded cardinality)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        recorder = scope["app"].state.model.metrics
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        recorder.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            recorder.in_flight.dec()
            route = scope.get("route")
            recorder.observe_request(route.path_format if route is not None else "unmatched", scope["method"], status, started)


async def _protocol_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    if exc.status == CLIENT_CLOSED:
        # Nobody reads this answer; the one line is for whoever wonders about the 499s in the metrics.
        client = request.client
        log.info("%s %s: %s%s", request.method, request.url.path, exc.message, f" ({client.host}:{client.port})" if client else "")
    return error(exc.status, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}", exc.headers)


async def _crash(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log (Starlette re-raises); the caller gets a line, not a stack.
    return error(500, f"internal error while serving {request.url.path}: {exc.__class__.__name__}")


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started = time.perf_counter()
        model = ServedModel(settings)
        app.state.model = model
        model.warm_up()
        log.info("serving %s (model %s, %s) as %r, ready in %.3f s", settings.model_dir, model.entry.report.model_id[:12],
                 model.entry.format, model.name, time.perf_counter() - started)
        yield
        model.ready = False
        model.metrics.close()

    token = settings.auth_token
    routes = [
        Route(_route_path(op.path), op.endpoint if op.open else bearer(token, op.endpoint), methods=[op.method])
        for op in OPERATIONS
    ]
    application = Starlette(
        routes=routes,
        middleware=[Middleware(Observe)],
        exception_handlers={ProtocolError: _protocol_error, HTTPException: _http_error, Exception: _crash},
        lifespan=lifespan,
    )
    application.state.settings = settings
    application.state.openapi = None
    return application


def from_environ() -> Starlette:
    """Factory for uvicorn workers, which re-read the settings from the environment."""
    return create_app(Settings.load())


def _route_path(path: str) -> str:
    return path.replace("{name}", "{name:segment}").replace("{version}", "{version:segment}")
