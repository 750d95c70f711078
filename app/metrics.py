"""Prometheus metrics (names are a contract: docs/contracts.md), with prometheus-client multiprocess support.

Per-feature input sums are kept as one numpy vector per process and exposed by a collector: two counter
increments per feature per request would cost more than the inference itself.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.registry import Collector

# Sub-millisecond inference: the default buckets would put every request in the first one.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# `_created` samples would double every scrape and no rule reads them.
disable_created_metrics()


class InputStats(Collector):
    """Rows seen and per-feature sum and sum of squares: `[rows, sum_0.., sumsq_0..]` in float64.

    With several workers each process writes its vector to a file in the multiprocess directory and the
    collector adds up every file, as prometheus-client does for its own counters.
    """

    def __init__(self, n_features: int, directory: Optional[Path]):
        self._n = n_features
        self._directory = directory
        size = 1 + 2 * n_features
        if directory is None:
            self._values = np.zeros(size)
        else:
            path = directory / f"input_stats_{os.getpid()}.f64"
            self._values = np.memmap(path, dtype=np.float64, mode="w+", shape=(size,))

    def observe(self, rows: np.ndarray) -> None:
        n, values = self._n, self._values
        wide = rows.astype(np.float64)
        values[0] += rows.shape[0]
        values[1 : n + 1] += wide.sum(axis=0)
        values[n + 1 :] += np.einsum("ij,ij->j", wide, wide)

    def _total(self) -> np.ndarray:
        if self._directory is None:
            return self._values
        size = 1 + 2 * self._n
        return sum((np.fromfile(p, dtype=np.float64, count=size) for p in self._directory.glob("input_stats_*.f64")), np.zeros(size))

    def collect(self) -> Iterable[Metric]:
        total = self._total()
        rows = CounterMetricFamily("modelship_input_rows", "Input rows seen by the model.")
        rows.add_metric([], float(total[0]))
        # Contract names without `_total`: prometheus-client would append it to a typed counter.
        # They only ever grow, so rate() applies.
        sums = UnknownMetricFamily("modelship_input_feature_sum", "Sum of each raw input feature (monotonic).", labels=["feature"])
        squares = UnknownMetricFamily(
            "modelship_input_feature_sum_squares", "Sum of squares of each raw input feature (monotonic).", labels=["feature"]
        )
        for i in range(self._n):
            sums.add_metric([str(i)], float(total[1 + i]))
            squares.add_metric([str(i)], float(total[1 + self._n + i]))
        return [rows, sums, squares]


class Metrics:
    def __init__(
        self,
        *,
        class_names: list[str],
        feature_mean: list[float],
        feature_std: list[float],
        class_ratio: list[float],
        info: dict[str, str],
    ):
        directory = os.environ.get(MULTIPROC_ENV)
        self._multiprocess = Path(directory) if directory else None
        # Single process: a registry of our own, so several apps can live in one process (tests).
        own = None if self._multiprocess else CollectorRegistry()
        self.requests = Counter("modelship_requests", "HTTP requests.", ["route", "method", "status"], registry=own)
        self.duration = Histogram(
            "modelship_request_duration_seconds", "HTTP request latency.", ["route"], buckets=LATENCY_BUCKETS, registry=own
        )
        self.in_flight = Gauge("modelship_requests_in_flight", "HTTP requests being served.", registry=own, multiprocess_mode="livesum")
        predictions = Counter("modelship_predictions", "Predicted classes (argmax).", ["class"], registry=own)
        self._per_class = [predictions.labels(name) for name in class_names]
        self.inputs = InputStats(len(feature_mean), self._multiprocess)
        self._fixed_gauges(own, class_names, feature_mean, feature_std, class_ratio, info)
        if own is None:
            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry)
        else:
            self.registry = own
            ProcessCollector(registry=own)
            PlatformCollector(registry=own)
        self.registry.register(self.inputs)
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    @staticmethod
    def _fixed_gauges(registry, class_names, feature_mean, feature_std, class_ratio, info) -> None:
        def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
            # "max": every worker sets the same value; the aggregate must not add them up.
            return Gauge(name, doc, labels, registry=registry, multiprocess_mode="max")

        mean = gauge("modelship_reference_feature_mean", "Training mean of each raw feature.", ["feature"])
        std = gauge("modelship_reference_feature_std", "Training standard deviation of each raw feature.", ["feature"])
        for i, (m, s) in enumerate(zip(feature_mean, feature_std)):
            mean.labels(str(i)).set(m)
            std.labels(str(i)).set(s)
        ratio = gauge("modelship_reference_class_ratio", "Training share of each class.", ["class"])
        for name, r in zip(class_names, class_ratio):
            ratio.labels(name).set(r)
        gauge("modelship_model_info", "The served model (value is always 1).", sorted(info)).labels(**info).set(1)

    def observe_request(self, route: str, method: str, status: int, started: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(route, method, str(status)),
                self.duration.labels(route),
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    def observe_predictions(self, rows: np.ndarray, probabilities: np.ndarray) -> None:
        self.inputs.observe(rows)
        counts = np.bincount(probabilities.argmax(axis=1), minlength=len(self._per_class))
        for index in np.flatnonzero(counts):
            self._per_class[index].inc(int(counts[index]))

    def close(self) -> None:
        """A stopping worker's live gauges (in-flight) must not linger in the other workers' aggregate."""
        if self._multiprocess is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self._multiprocess))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
