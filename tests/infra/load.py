"""Constant, bounded inference load on an endpoint, counting every request that failed: what a model update
must not drop. Threads with one keep-alive connection each (a client reconnects after a failure), a shared
rate limit, and each answer classified by the model that gave it (its output vector).
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
from typing import Optional
from urllib.parse import urlsplit

PATH = "/v2/models/model/infer"
BODY = json.dumps({"inputs": [{"name": "features", "shape": [1, 64], "datatype": "FP32", "data": [float(i % 16) for i in range(64)]}]})


def signature(answer: bytes) -> tuple[float, ...]:
    """A model's output for the fixed request, rounded: equal for two answers of one model, different between
    two trained models."""
    return tuple(round(v, 4) for v in json.loads(answer)["outputs"][0]["data"])


@dataclass
class Tally:
    ok: int = 0
    # Failed requests: an exception (refused, reset) or a status other than 200, by kind.
    failed: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)
    # Requests finished (answered or failed) per wall-clock second: the rate around a given moment.
    per_second: Counter = field(default_factory=Counter)
    first_failure: Optional[float] = None
    last_failure: Optional[float] = None
    seconds: float = 0.0

    @property
    def dropped(self) -> int:
        return sum(self.failed.values())

    @property
    def rate(self) -> float:
        return (self.ok + self.dropped) / self.seconds if self.seconds else 0.0

    def rate_around(self, moment: float, before_s: int = 2, after_s: int = 2) -> float:
        """Requests per second finished from `before_s` before `moment` (wall clock) to `after_s` after it."""
        seconds = range(int(moment) - before_s, int(moment) + after_s)
        return sum(self.per_second[s] for s in seconds) / len(seconds)

    def failure_window_s(self) -> float:
        return 0.0 if self.first_failure is None else self.last_failure - self.first_failure

    def summary(self) -> str:
        return (f"{self.ok + self.dropped} requests in {self.seconds:.1f} s ({self.rate:.0f} req/s): {self.dropped} failed "
                f"over {self.failure_window_s():.1f} s {dict(self.failed)}, answers by model {len(self.answers)}")


class Load:
    """`with Load(endpoint, token, rate=300) as load: ...`; `load.tally` once it has stopped."""

    def __init__(self, endpoint: str, token: Optional[str] = None, rate: float = 300.0, threads: int = 4):
        url = urlsplit(endpoint)
        self.host, self.port = url.hostname, url.port
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.interval = threads / rate
        self.threads = threads
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _record(self, ok: bool, kind: str, answer: bytes = b"") -> None:
        with self._lock:
            self.tally.per_second[int(time.time())] += 1
            if ok:
                self.tally.ok += 1
                self.tally.answers[signature(answer)] += 1
                return
            now = time.monotonic()
            self.tally.failed[kind] += 1
            self.tally.first_failure = self.tally.first_failure or now
            self.tally.last_failure = now

    def _run(self) -> None:
        # The load is the measuring instrument: it runs at normal priority even when the test around it is niced
        # (as tests here are), or a busy machine measures the instrument's starvation instead of the servers.
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 0)
        connection: Optional[http.client.HTTPConnection] = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                connection.request("POST", PATH, body=BODY, headers=self.headers)
                response = connection.getresponse()
                answer = response.read()
                self._record(response.status == 200, f"status {response.status}", answer)
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as err:
                self._record(False, type(err).__name__)
                connection.close()
                connection = None
            # Bounded: time lost to a slow request is not made up in a burst afterwards.
            next_at = max(next_at + self.interval, time.monotonic() - self.interval)
            time.sleep(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> "Load":
        self._started = time.monotonic()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=15)
        self.tally.seconds = time.monotonic() - self._started


def answer_of(endpoint: str, token: Optional[str] = None) -> tuple[float, ...]:
    """The signature of the model serving `endpoint` now."""
    url = urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    connection.request("POST", PATH, body=BODY, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200, (response.status, body)
    return signature(body)
