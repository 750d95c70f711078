"""HTTP plumbing shared by both protocols: bounded JSON bodies, orjson responses, bearer auth."""
from __future__ import annotations

import asyncio
import hmac
from typing import Any, Awaitable, Callable, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from app.errors import ProtocolError

Endpoint = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


class JSON(Response):
    """orjson with numpy support: probabilities go out without a `tolist()` copy."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": message}, status_code=status, headers=headers)


# nginx's status for a request its client abandoned: neither the server's fault nor an answer anyone reads.
CLIENT_CLOSED = 499


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (never buffered past it), with 408
    when it has not all arrived within `timeout` seconds, and with 499 when the client went away meanwhile."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ProtocolError(400, f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise ProtocolError(413, f"request body of {declared} bytes is over the limit of {limit} (MAX_BODY_BYTES)")
    try:
        async with asyncio.timeout(timeout):
            # With a Content-Length the HTTP layer stops reading there, so the read is bounded by it.
            return await (request.body() if declared is not None else _chunked(request, limit))
    except TimeoutError:
        # The rest of the body may still come: the connection cannot carry another request.
        raise ProtocolError(408, f"request body not received within {timeout:g} s (BODY_TIMEOUT_SECONDS)",
                            {"connection": "close"}) from None
    except ClientDisconnect:
        raise ProtocolError(CLIENT_CLOSED, "client closed the connection before sending the whole body") from None


async def _chunked(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(413, f"request body is over the limit of {limit} bytes (MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, model: type[M]) -> tuple[M, bool]:
    """Parses with orjson, then validates the envelope with `model` (tensor data stays as parsed); also
    whether the body holds a JSON `true` or `false` at all, so tensors need checking for booleans."""
    settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout_seconds)
    if not body:
        raise ProtocolError(400, "empty request body, expected a JSON object")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ProtocolError(400, f"malformed JSON: {e}") from None
    if not isinstance(document, dict):
        raise ProtocolError(400, f"request body must be a JSON object, got {type(document).__name__}")
    try:
        parsed = model.model_validate(document)
    except ValidationError as e:
        raise ProtocolError(400, "; ".join(_describe(err) for err in e.errors(include_url=False))) from None
    return parsed, b"true" in body or b"false" in body


def _describe(err: Any) -> str:
    location = ".".join(str(part) for part in err["loc"]) or "body"
    return f"{location}: {err['msg']}"


def bearer(token: str | None, endpoint: Endpoint) -> Endpoint:
    """`endpoint` behind `Authorization: Bearer <token>`; unchanged when no token is configured."""
    if token is None:
        return endpoint
    expected = f"Bearer {token}".encode()

    async def guarded(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            reason = "missing" if not given else "invalid"
            return error(401, f"{reason} bearer token: send `Authorization: Bearer <AUTH_TOKEN>`", {"WWW-Authenticate": "Bearer"})
        return await endpoint(request)

    return guarded
