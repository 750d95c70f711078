"""Prometheus metrics (names are a contract: docs/contracts.md), with prometheus-client multiprocess support.

Input drift is counted per monitored feature and reference bin (report.json `reference.features`): the
series per pod are bounded by the report, not the input's width, and counts only grow whatever the sign of
the inputs. The counts live in one numpy vector per process, exposed by a collector: a counter increment
per feature per request would cost more than the inference itself.
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
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from app.entry import FeatureBins, Reference, Task

# Sub-millisecond inference: the default buckets would put every request in the first one.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# `_created` samples would double every scrape and no rule reads them.
disable_created_metrics()


class InputBins(Collector):
    """Rows seen and, per monitored feature, rows per reference bin: `[rows, counts of feature 0's bins, ...]`.

    With several workers each process writes its vector to a file in the multiprocess directory and the
    collector adds up every file, as prometheus-client does for its own counters.
    """

    def __init__(self, features: list[FeatureBins], directory: Optional[Path]):
        self._features = features
        self._columns = np.array([f.index for f in features], dtype=np.intp)
        # Edges padded with +inf: a finite value is never >= inf, so padding adds nothing to a bin number.
        self._edges = np.full((len(features), max((len(f.edges) for f in features), default=0)), np.inf)
        for row, feature in enumerate(features):
            self._edges[row, : len(feature.edges)] = feature.edges
        sizes = [len(f.edges) + 1 for f in features]
        self._offsets = 1 + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self._size = 1 + sum(sizes)
        self._directory = directory
        if directory is None:
            self._values = np.zeros(self._size)
        else:
            path = directory / f"input_bins_{os.getpid()}.f64"
            self._values = np.memmap(path, dtype=np.float64, mode="w+", shape=(self._size,))

    def observe(self, batch: np.ndarray) -> None:
        values = batch.reshape(batch.shape[0], -1)[:, self._columns].astype(np.float64)
        # searchsorted(edges, v, side="right") for every feature at once: the number of edges <= v.
        bins = (self._edges[np.newaxis] <= values[:, :, np.newaxis]).sum(axis=2)
        counts = np.bincount((self._offsets + bins).ravel(), minlength=self._size)
        counts[0] = batch.shape[0]
        self._values += counts

    def _total(self) -> np.ndarray:
        if self._directory is None:
            return self._values
        files = self._directory.glob("input_bins_*.f64")
        return sum((np.fromfile(p, dtype=np.float64, count=self._size) for p in files), np.zeros(self._size))

    def collect(self) -> Iterable[Metric]:
        total = self._total()
        rows = CounterMetricFamily("modelship_input_rows", "Input rows seen by the model.")
        rows.add_metric([], float(total[0]))
        bins = CounterMetricFamily("modelship_input_feature_bin", "Input rows per monitored feature and reference bin.",
                                   labels=["feature", "bin"])
        for feature, offset in zip(self._features, self._offsets):
            for b in range(len(feature.edges) + 1):
                bins.add_metric([str(feature.index), str(b)], float(total[offset + b]))
        return [rows, bins]


class Metrics:
    def __init__(self, *, task: Task, class_names: list[str], reference: Reference, info: dict[str, str]):
        directory = os.environ.get(MULTIPROC_ENV)
        self._multiprocess = Path(directory) if directory else None
        # Single process: a registry of our own, so several apps can live in one process (tests).
        own = None if self._multiprocess else CollectorRegistry()
        self.requests = Counter("modelship_requests", "HTTP requests.", ["route", "method", "status"], registry=own)
        self.duration = Histogram(
            "modelship_request_duration_seconds", "HTTP request latency.", ["route"], buckets=LATENCY_BUCKETS, registry=own
        )
        self.in_flight = Gauge("modelship_requests_in_flight", "HTTP requests being served.", registry=own, multiprocess_mode="livesum")
        self._task = task
        if task == "regression":
            assert reference.prediction is not None  # ServedEntry checked it
            self._prediction_edges = np.asarray(reference.prediction.edges, dtype=np.float64)
            counter = Counter("modelship_prediction_bin", "Predictions per reference bin.", ["bin"], registry=own)
            self._per_value = [counter.labels(str(b)) for b in range(len(reference.prediction.ratios))]
        else:
            counter = Counter("modelship_predictions", "Predicted classes.", ["class"], registry=own)
            self._per_value = [counter.labels(name) for name in class_names]
        self.inputs = InputBins(reference.features, self._multiprocess)
        _reference_gauges(own, task, class_names, reference, info)
        if own is None:
            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry)
        else:
            self.registry = own
            ProcessCollector(registry=own)
            PlatformCollector(registry=own)
        self.registry.register(self.inputs)
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

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

    def observe_predictions(self, batch: np.ndarray, outputs: np.ndarray) -> None:
        self.inputs.observe(batch)
        if self._task == "multiclass":
            codes = outputs.argmax(axis=1)
        elif self._task == "binary":  # the probability of class 1, threshold 0.5 as in the metrics
            codes = (outputs[:, 0] >= 0.5).astype(np.intp)
        else:
            codes = np.searchsorted(self._prediction_edges, outputs[:, 0], side="right")
        counts = np.bincount(codes, minlength=len(self._per_value))
        for index in np.flatnonzero(counts):
            self._per_value[index].inc(int(counts[index]))

    def close(self) -> None:
        """A stopping worker's live gauges (in-flight) must not linger in the other workers' aggregate."""
        if self._multiprocess is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self._multiprocess))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _reference_gauges(registry: Optional[CollectorRegistry], task: Task, class_names: list[str], reference: Reference,
                      info: dict[str, str]) -> None:
    def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
        # "max": every worker sets the same value; the aggregate must not add them up.
        return Gauge(name, doc, labels, registry=registry, multiprocess_mode="max")

    features = gauge("modelship_reference_feature_bin_ratio", "Training share of each monitored feature's bins.", ["feature", "bin"])
    for feature in reference.features:
        for b, ratio in enumerate(feature.ratios):
            features.labels(str(feature.index), str(b)).set(ratio)
    if task == "regression":
        assert reference.prediction is not None
        predictions = gauge("modelship_reference_prediction_bin_ratio", "Training share of each prediction bin.", ["bin"])
        for b, ratio in enumerate(reference.prediction.ratios):
            predictions.labels(str(b)).set(ratio)
    else:
        classes = gauge("modelship_reference_class_ratio", "Training share of each class.", ["class"])
        for name, ratio in zip(class_names, reference.class_distribution):
            classes.labels(name).set(ratio)
    gauge("modelship_model_info", "The served model (value is always 1).", sorted(info)).labels(**info).set(1)
