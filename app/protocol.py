"""uvicorn's httptools HTTP/1.1 protocol with a deadline on each request's line and headers.

uvicorn bounds only the idle time between two requests (`timeout_keep_alive`), and resets even that on
every byte received: a client that connects and sends nothing, or trickles its headers a byte at a time,
holds a connection for ever. Here a request must be through its headers within HEADER_TIMEOUT_SECONDS
of its first byte (or of the connection, for the first request); otherwise it gets a 408 and is closed.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from asyncio import TimerHandle

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

log = logging.getLogger("uvicorn.error")


@functools.cache
def _timeout() -> float:
    # uvicorn builds the protocol by import path in each worker process, so it reads the settings there too.
    return Settings.load().header_timeout_seconds


def _timeout_response(timeout: float) -> bytes:
    body = orjson.dumps({"error": f"request headers not received within {timeout:g} s (HEADER_TIMEOUT_SECONDS)"})
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


class HeaderDeadlineProtocol(HttpToolsProtocol):
    _deadline: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(_timeout(), self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.info("closed the connection from %s: request headers not complete within %g s (HEADER_TIMEOUT_SECONDS)",
                 "%s:%d" % self.client if self.client else "a client", _timeout())
        self.transport.write(_timeout_response(_timeout()))
        self.transport.close()
