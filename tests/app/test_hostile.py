"""Clients that hold connections open or go away mid-request (issue 14, items 1 and 2), against the real server.

Timeouts are set to 1 s here (the defaults are BODY_TIMEOUT_SECONDS=60, HEADER_TIMEOUT_SECONDS=10,
KEEP_ALIVE_SECONDS=5); each test would hang or see a 500 on a server without the bound.
"""
from __future__ import annotations

import socket
import time

import pytest

from app_metrics import scrape, series
from app_server import Server

TIMEOUT_S = 1.0
PREDICT = b"POST /v1/models/model:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def strict(entry):
    running = Server(entry, env={"BODY_TIMEOUT_SECONDS": str(TIMEOUT_S), "HEADER_TIMEOUT_SECONDS": str(TIMEOUT_S),
                                 "KEEP_ALIVE_SECONDS": str(TIMEOUT_S)})
    yield running
    running.stop()


def _until_closed(sock: socket.socket, limit_s: float = 10) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    begun = time.monotonic()
    sock.settimeout(limit_s)
    answer = b""
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            pytest.fail(f"connection still open after {limit_s} s; received {answer!r}")
        if not data:
            return answer, time.monotonic() - begun
        answer += data


def _one_response(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_body_shorter_than_its_length_gets_408_and_close(strict):
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        sock.sendall(PREDICT + b"Content-Length: 1000\r\n\r\n" + b'{"instances": [[1.0, ')  # 21 of 1000 bytes
        answer, elapsed = _until_closed(sock)
    print(f"short body: 408 and close after {elapsed:.2f} s (BODY_TIMEOUT_SECONDS={TIMEOUT_S})")
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"BODY_TIMEOUT_SECONDS" in answer and b"connection: close" in answer.lower()
    assert TIMEOUT_S * 0.9 < elapsed < TIMEOUT_S + 2
    samples = scrape(strict)
    assert samples[("modelship_requests_total", (("method", "POST"), ("route", "/v1/models/{name}:predict"), ("status", "408")))] >= 1


def test_slow_chunked_body_gets_408(strict):
    """Chunks keep coming, one every 0.2 s: the bound is on the whole body, not on the gap between reads."""
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        sock.sendall(PREDICT + b"Transfer-Encoding: chunked\r\n\r\n")
        begun = time.monotonic()
        try:
            while time.monotonic() - begun < TIMEOUT_S + 2:
                sock.sendall(b"1\r\n \r\n")
                time.sleep(0.2)
                sock.setblocking(False)
                try:
                    first = sock.recv(65536)
                    break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            first = b""
        rest, _ = _until_closed(sock)
    assert (first + rest).startswith(b"HTTP/1.1 408 "), first + rest
    assert time.monotonic() - begun < TIMEOUT_S + 2


@pytest.mark.parametrize("sent", [b"", b"POST /v1/models/model:predict HTTP/1.1\r\nHost: x\r\n"], ids=["silent", "partial"])
def test_incomplete_headers_get_408_and_close(strict, sent):
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        sock.sendall(sent)
        answer, elapsed = _until_closed(sock)
    print(f"{'no request' if not sent else 'headers never completed'}: 408 and close after {elapsed:.2f} s")
    assert answer.startswith(b"HTTP/1.1 408 ") and b"HEADER_TIMEOUT_SECONDS" in answer, answer
    assert elapsed < TIMEOUT_S + 2


def test_trickled_headers_get_408(strict):
    """A byte every 0.2 s resets uvicorn's own keep-alive timer for ever; the header deadline does not move."""
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        begun = time.monotonic()
        request = PREDICT + b"X-Slow: " + b"a" * 100
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer, _ = _until_closed(sock)
    elapsed = time.monotonic() - begun
    print(f"trickled headers: 408 and close after {elapsed:.2f} s")
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert elapsed < TIMEOUT_S + 2


def test_a_second_request_on_the_connection_has_its_own_deadline(strict):
    body = b'{"instances": [[' + b",".join([b"1.0"] * 64) + b"]]}"
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        for _ in range(2):  # each well within the deadline, although together they take longer
            time.sleep(TIMEOUT_S * 0.6)
            sock.sendall(PREDICT + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            answer = _one_response(sock)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
        # Then idle: closed after KEEP_ALIVE_SECONDS.
        answer, elapsed = _until_closed(sock)
    assert answer == b"" and elapsed < TIMEOUT_S + 2


def test_client_gone_mid_body_is_499_with_one_log_line(entry):
    running = Server(entry)
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", running.port)) as sock:
                sock.sendall(PREDICT + b"Content-Length: 1000\r\n\r\n" + b'{"instances": [[1.0, ')
                time.sleep(0.2)
        deadline = time.monotonic() + 10
        statuses: dict[str, float] = {}
        while time.monotonic() < deadline:
            statuses = {dict(labels)["status"]: value
                        for labels, value in series(scrape(running), "modelship_requests_total").items()
                        if dict(labels)["route"] == "/v1/models/{name}:predict"}
            if statuses.get("499") == 3:
                break
            time.sleep(0.1)
        assert statuses == {"499": 3}, statuses
        log = running.output()
        lines = [line for line in log.splitlines() if "client closed the connection" in line]
        assert len(lines) == 3, log
        assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    finally:
        running.stop()
