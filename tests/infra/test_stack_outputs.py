"""`make up` returns once the endpoint it prints answers from this machine (infra/stack_outputs.py): a real HTTP
server on loopback that starts answering late, one that never answers, and an in-cluster name left alone."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infra import READY_PATH
from infra.stack_outputs import unanswered
from tests.infra.registry import free_port


class Ready(BaseHTTPRequestHandler):
    """Answers 503 until the server's `ready_at`, then 200, on the readiness route only."""

    def do_GET(self) -> None:
        ready = time.monotonic() >= self.server.ready_at and self.path == READY_PATH  # type: ignore[attr-defined]
        self.send_response(200 if ready else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Ready)
    httpd.ready_at = float("inf")  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


def test_waits_until_the_readiness_route_answers(server: ThreadingHTTPServer) -> None:
    server.ready_at = time.monotonic() + 1.5  # type: ignore[attr-defined]
    begun = time.monotonic()
    assert unanswered(f"http://127.0.0.1:{server.server_port}", timeout=10) is None
    assert time.monotonic() - begun >= 1.5


def test_says_what_it_last_got_when_it_never_answers(server: ThreadingHTTPServer) -> None:
    assert "503" in (unanswered(f"http://127.0.0.1:{server.server_port}", timeout=1) or "")
    port = free_port()  # nothing listens there
    assert "refused" in (unanswered(f"http://127.0.0.1:{port}", timeout=1) or "").lower()


def test_an_endpoint_off_this_machine_is_left_alone() -> None:
    assert unanswered("http://modelship-server.modelship-prod.svc.cluster.local", timeout=1) is None
