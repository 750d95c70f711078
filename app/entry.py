"""The part of a store entry (docs/contracts.md) the server reads: report.json and the served artifact."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError


class _Open(BaseModel):
    # model/ may add fields; the server reads only what it needs.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Data(_Open):
    n_features: int
    n_classes: int
    class_names: list[str]


class Reference(_Open):
    class_distribution: list[float]
    feature_mean: list[float]
    feature_std: list[float]


class Report(_Open):
    model_id: str
    data: Data
    artifacts: dict[str, str]
    serving_format: str = "tflite"
    metrics: dict[str, dict[str, object]] = {}
    reference: Reference


class EntryError(Exception):
    """The store entry cannot be served; the message says which file and what to do."""


class StoreEntry:
    """A verified store entry: `report` plus `model_path`, the artifact named by `report.serving_format`."""

    def __init__(self, directory: Path):
        self.directory = directory
        report_path = directory / "report.json"
        try:
            self.report = Report.model_validate_json(report_path.read_bytes())
        except FileNotFoundError:
            raise EntryError(f"{report_path} is missing: MODEL_DIR must be a store entry written by `python -m model train`") from None
        except ValidationError as e:
            raise EntryError(f"{report_path} does not match the store entry contract: {e}") from None
        artifact = self.report.artifacts.get(self.report.serving_format)
        if artifact is None or not artifact.endswith(".tflite"):
            raise EntryError(
                f"{report_path}: serving_format {self.report.serving_format!r} names no TFLite artifact in {self.report.artifacts}"
            )
        self.model_path = directory / artifact
        self._verify(artifact)
        if len(self.report.reference.feature_mean) != self.report.data.n_features:
            raise EntryError(f"{report_path}: reference.feature_mean has {len(self.report.reference.feature_mean)} values for {self.report.data.n_features} features")

    def _verify(self, artifact: str) -> None:
        # A served model that differs from the one the gate measured must never start.
        checksums_path = self.directory / "checksums.json"
        try:
            expected = json.loads(checksums_path.read_text())["files"][artifact]
        except (FileNotFoundError, KeyError, json.JSONDecodeError) as e:
            raise EntryError(f"{checksums_path} lists no checksum for {artifact} ({e.__class__.__name__}): the entry is incomplete") from None
        try:
            actual = hashlib.sha256(self.model_path.read_bytes()).hexdigest()
        except FileNotFoundError:
            raise EntryError(f"{self.model_path} is missing from the store entry") from None
        if actual != expected:
            raise EntryError(f"{self.model_path} has sha256 {actual}, checksums.json says {expected}: the entry was altered")

    @property
    def format(self) -> str:
        return self.report.serving_format

    def metric(self, name: str) -> float | None:
        value = self.report.metrics.get(self.format, {}).get(name)
        return float(value) if isinstance(value, (int, float)) else None
