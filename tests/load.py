"""Constant, bounded inference load on an endpoint, counting every request that failed: what a model update, a
drain or a crash must not drop. Used by the Docker target's zero-drop tests, the cluster's serving tests and
bench/proxy.py.

Each thread sends V2 inference of one fixed input (a handwritten 0 of the digits set, README step 2) under a
shared rate limit, and each answer is classified by the model that gave it (its output, rounded). Through a
reverse proxy a thread keeps its connection alive (reconnecting after a failure); through a Kubernetes Service
each request takes a new connection, so that kube-proxy spreads them over every ready pod.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple, Optional
from urllib.parse import urlsplit

PATH = "/v2/models/model/infer"
DIGIT = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0,
         0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
BODY = json.dumps({"inputs": [{"name": "features", "shape": [1, 64], "datatype": "FP32", "data": DIGIT}]})

Answer = tuple[float, ...]


def signature(body: bytes) -> Answer:
    """A model's output for the fixed input, rounded: equal for two answers of one model, different between two
    trained models."""
    return tuple(round(v, 4) for v in json.loads(body)["outputs"][0]["data"])


def _headers(token: Optional[str], keep_alive: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if not keep_alive:
        headers["Connection"] = "close"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def answer_of(endpoint: str, token: Optional[str] = None, timeout: float = 10) -> Answer:
    """The signature of the model serving `endpoint` now, on a new connection; an error if it does not answer 200."""
    url = urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        connection.request("POST", PATH, body=BODY, headers=_headers(token, keep_alive=False))
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
    return signature(body)


class Failure(NamedTuple):
    """A request that failed: an exception (refused, reset) or a status other than 200."""

    at_s: float  # seconds since the load started
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.at_s:.2f}s {self.kind}: {self.detail}"


@dataclass
class Tally:
    ok: int = 0
    answers: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    # Requests finished (answered or failed) per wall-clock second: the rate around a given moment.
    per_second: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def dropped(self) -> int:
        return len(self.failures)

    @property
    def failed(self) -> Counter:
        """Failed requests by kind."""
        return Counter(f.kind for f in self.failures)

    @property
    def rate(self) -> float:
        return (self.ok + self.dropped) / self.seconds if self.seconds else 0.0

    def rate_around(self, moment: float, before_s: int = 2, after_s: int = 2) -> float:
        """Requests per second finished from `before_s` before `moment` (wall clock) to `after_s` after it."""
        seconds = range(int(moment) - before_s, int(moment) + after_s)
        return sum(self.per_second[s] for s in seconds) / len(seconds)

    def failure_window_s(self) -> float:
        times = [f.at_s for f in self.failures]
        return max(times) - min(times) if times else 0.0

    def summary(self) -> str:
        return (f"{self.ok + self.dropped} requests in {self.seconds:.1f} s ({self.rate:.0f} req/s): {self.dropped} failed "
                f"over {self.failure_window_s():.1f} s {dict(self.failed)}, answers by model {len(self.answers)}"
                + (f"; first failures: {[str(f) for f in self.failures[:5]]}" if self.failures else ""))


class Load:
    """`with Load(endpoint, token, rate=300) as load: ...`; `load.tally` once it has stopped.

    `rate` is requests/s in all (None: as fast as the threads go); time lost to a slow request is not made up in
    a burst afterwards. `max_seconds` bounds a load whose test fails before stopping it.
    """

    def __init__(self, endpoint: str, token: Optional[str] = None, rate: Optional[float] = 300.0, threads: int = 4,
                 keep_alive: bool = True, max_seconds: float = 600.0):
        url = urlsplit(endpoint)
        self.host, self.port = url.hostname, url.port
        self.headers = _headers(token, keep_alive)
        self.keep_alive = keep_alive
        self.interval = threads / rate if rate else 0.0
        self.threads = threads
        self.max_seconds = max_seconds
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.started = 0.0  # time.monotonic() at the start

    def _record(self, ok: bool, kind: str, detail: str = "", body: bytes = b"") -> None:
        now = time.monotonic()
        with self._lock:
            self.tally.per_second[int(time.time())] += 1
            if ok:
                self.tally.ok += 1
                self.tally.answers[signature(body)] += 1
                return
            self.tally.failures.append(Failure(now - self.started, kind, detail))

    def _run(self, index: int) -> None:
        # The load is the measuring instrument: it runs at normal priority even when the test around it is niced
        # (as tests here are), or a busy machine measures the instrument's starvation instead of the servers.
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 0)
        connection: Optional[http.client.HTTPConnection] = None
        # Threads start staggered, so that the requests are spread over each interval.
        next_at = time.monotonic() + index * self.interval / self.threads
        deadline = self.started + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                connection.request("POST", PATH, body=BODY, headers=self.headers)
                response = connection.getresponse()
                body = response.read()
                self._record(response.status == 200, f"status {response.status}", repr(body[:200]), body)
                if response.will_close or not self.keep_alive:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as err:
                self._record(False, type(err).__name__, str(err))
                connection.close()
                connection = None
            next_at = max(next_at + self.interval, time.monotonic() - self.interval)
        if connection is not None:
            connection.close()

    def steady_rate(self, seconds: float = 5.0) -> float:
        """Waits `seconds` and returns the rate the load kept meanwhile: the load going into a fault."""
        with self._lock:
            before = self.tally.ok + self.tally.dropped
        begun = time.monotonic()
        time.sleep(seconds)
        with self._lock:
            return (self.tally.ok + self.tally.dropped - before) / (time.monotonic() - begun)

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=15)
        self.tally.seconds = time.monotonic() - self.started
