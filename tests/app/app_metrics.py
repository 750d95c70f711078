"""Reading the server's /metrics, and what its drift series must say for a given traffic (docs/contracts.md)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from app_server import Server

Samples = dict[tuple[str, tuple], float]


def scrape(server: Server) -> Samples:
    text = server.client.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def report(entry: Path) -> dict:
    return json.loads((entry / "report.json").read_text())


def feature_bins(entry: Path, batch: np.ndarray) -> dict[tuple[str, str], int]:
    """Rows per (feature, bin) of the report's monitored features, by numpy's own searchsorted."""
    flat = batch.reshape(len(batch), -1).astype(np.float64)
    counts = {}
    for feature in report(entry)["reference"]["features"]:
        bins = np.searchsorted(feature["edges"], flat[:, feature["index"]], side="right")
        for b in range(len(feature["edges"]) + 1):
            counts[(str(feature["index"]), str(b))] = int((bins == b).sum())
    return counts


def prediction_counts(entry: Path, outputs: np.ndarray) -> tuple[str, dict[tuple, int]]:
    """The prediction series (name, labels -> count) the task's outputs must have added up to."""
    r = report(entry)
    names = r["data"]["class_names"]
    if r["task"] == "regression":
        edges = r["reference"]["prediction"]["edges"]
        bins = np.searchsorted(edges, outputs[:, 0].astype(np.float64), side="right")
        return "modelship_prediction_bin_total", {(("bin", str(b)),): int((bins == b).sum()) for b in range(len(edges) + 1)}
    codes = outputs.argmax(axis=1) if r["task"] == "multiclass" else (outputs[:, 0] >= 0.5).astype(int)
    return "modelship_predictions_total", {(("class", name),): int((codes == i).sum()) for i, name in enumerate(names)}


def series(samples: Samples, name: str) -> dict[tuple, float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}
