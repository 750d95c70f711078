"""The model as both protocols see it: one store entry, loaded, warmed up and observed."""
from __future__ import annotations

import os

import numpy as np

from app.entry import StoreEntry
from app.metrics import Metrics
from app.predictor import Predictor
from app.settings import Settings

# One servable per image; clients of both protocols expect a version, and TF Serving's is numeric.
VERSION = "1"


class ServedModel:
    def __init__(self, settings: Settings):
        self.name = settings.model_name
        self.version = VERSION
        self.max_batch = settings.max_batch
        self.entry = StoreEntry(settings.model_dir)
        report = self.entry.report
        self.predictor = Predictor(self.entry.model_path)
        if (self.predictor.n_features, self.predictor.n_classes) != (report.data.n_features, report.data.n_classes):
            raise ValueError(
                f"{self.entry.model_path} takes {self.predictor.n_features} features to {self.predictor.n_classes} classes, "
                f"report.json says {report.data.n_features} to {report.data.n_classes}: the entry is inconsistent"
            )
        self.class_names = report.data.class_names
        self.metrics = Metrics(
            class_names=self.class_names,
            feature_mean=report.reference.feature_mean,
            feature_std=report.reference.feature_std,
            class_ratio=report.reference.class_distribution,
            info={
                "model_id": report.model_id,
                "version": self.version,
                "format": self.entry.format,
                # Set by the image build from the gate result; a bare `python -m app` has not been gated.
                "gate_passed": os.environ.get("GATE_PASSED", "unknown"),
                "accuracy": _label(self.entry.metric("accuracy")),
                "f1_macro": _label(self.entry.metric("f1_macro")),
            },
        )
        self.ready = False

    def warm_up(self) -> None:
        """One inference at the reference mean, so the first request pays no allocation; then ready."""
        mean = np.asarray([self.entry.report.reference.feature_mean], dtype=np.float32)
        probabilities = self.predictor.predict(mean)
        if probabilities.shape != (1, self.predictor.n_classes) or not np.isfinite(probabilities).all():
            raise RuntimeError(f"warm-up inference on {self.entry.model_path} gave {probabilities!r}")
        self.ready = True

    def predict(self, rows: np.ndarray) -> np.ndarray:
        probabilities = self.predictor.predict(rows)
        self.metrics.observe_predictions(rows, probabilities)
        return probabilities


def _label(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
