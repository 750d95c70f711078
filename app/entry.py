"""A store entry as its readers see it (docs/contracts.md): report.json's schema, and the entry the server serves.

`Report` is the one definition of report.json's fields that app/ and infra/ rely on; model/ writes it as
`model.report.TrainingReport`, which extends it. This module imports neither TensorFlow nor anything of
model/: the server image carries app/ only.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Task = Literal["multiclass", "binary", "regression"]
DType = Literal["float32", "int32"]


class _Open(BaseModel):
    # model/ may add fields; a reader reads only what it needs.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Tensor(_Open):
    """One tensor of the signature, without its batch dimension."""

    name: str = Field(min_length=1)
    dtype: DType
    shape: list[int] = Field(min_length=1)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @model_validator(mode="after")
    def _positive_dims(self) -> "Tensor":
        if any(d < 1 for d in self.shape):
            raise ValueError(f"shape {self.shape} has a dimension below 1: every dimension but the batch is fixed")
        return self


class Signature(_Open):
    """The served model's one input and one output, without the batch dimension."""

    input: Tensor
    output: Tensor


class Data(_Open):
    n_features: int
    n_classes: int
    class_names: list[str]


class Bins(_Open):
    """Quantile bins of one training-split series: `v` falls in bin `searchsorted(edges, v, side="right")`, so
    `len(edges) + 1` bins, `ratios` their training shares."""

    edges: list[float]
    ratios: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> "Bins":
        if len(self.ratios) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges make {len(self.edges) + 1} bins, but there are {len(self.ratios)} ratios")
        if any(not b > a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"edges must be strictly increasing, got {self.edges}")
        return self


class FeatureBins(Bins):
    index: int = Field(ge=0, description="flat index into the input")


class Reference(_Open):
    """Training-split statistics in raw input units: the baseline drift is measured against."""

    class_distribution: list[float]
    features: list[FeatureBins]
    prediction: Optional[Bins] = None


class Report(_Open):
    """report.json: the fields its readers rely on (model/'s `TrainingReport` holds them and more)."""

    model_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    task: Task
    signature: Signature
    data: Data
    artifacts: dict[str, str]
    serving_format: str
    # Per artifact format, that artifact's metrics on the test split (model/ types them per task).
    metrics: dict[str, dict[str, object]]
    reference: Reference


class EntryError(Exception):
    """The store entry cannot be served; the message says which file and what to do."""


class ServedEntry:
    """The store entry the server serves (MODEL_DIR): `report`, and `model_path`, the TFLite artifact named by
    `report.serving_format`, verified against checksums.json; the report must not contradict itself.
    (model/'s `StoreEntry` is the store's view: every file verified, the model id matched.)"""

    def __init__(self, directory: Path):
        self.directory = directory
        report_path = directory / "report.json"
        try:
            self.report = Report.model_validate_json(report_path.read_bytes())
        except FileNotFoundError:
            raise EntryError(f"{report_path} is missing: MODEL_DIR must be a store entry written by `python -m model train`") from None
        except ValidationError as e:
            raise EntryError(f"{report_path} does not match the store entry contract (docs/contracts.md): {e}") from None
        artifact = self.report.artifacts.get(self.report.serving_format)
        if artifact is None or not artifact.endswith(".tflite"):
            raise EntryError(
                f"{report_path}: serving_format {self.report.serving_format!r} names no TFLite artifact in {self.report.artifacts}"
            )
        self.model_path = directory / artifact
        self._verify(artifact)
        problems = _inconsistencies(self.report)
        if problems:
            raise EntryError(f"{report_path} contradicts itself: {'; '.join(problems)}. Rebuild the entry with model/")

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

    def check_model(self, input_shape: list[int], input_dtype: str, output_shape: list[int]) -> None:
        """The TFLite file's own tensors (without the batch dimension) must be the signature's."""
        signature = self.report.signature
        found = {"input shape": (input_shape, signature.input.shape), "input dtype": (input_dtype, signature.input.dtype),
                 "output shape": (output_shape, signature.output.shape)}
        wrong = [f"{what} {actual} (report.json signature: {expected})" for what, (actual, expected) in found.items() if actual != expected]
        if wrong:
            raise EntryError(f"{self.model_path} does not match report.json: {', '.join(wrong)}. Rebuild the entry with model/")

    @property
    def format(self) -> str:
        return self.report.serving_format

    def metric(self, name: str) -> float | None:
        value = self.report.metrics.get(self.format, {}).get(name)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _inconsistencies(report: Report) -> list[str]:
    """What the server relies on between the task, the signature, the classes and the drift reference."""
    signature, data, reference = report.signature, report.data, report.reference
    problems = []
    if signature.output.dtype != "float32":
        problems.append(f"signature.output.dtype is {signature.output.dtype}, the model's output is float32")
    if data.n_features != signature.input.size:
        problems.append(f"data.n_features is {data.n_features}, signature.input.shape {signature.input.shape} holds {signature.input.size}")
    width = {"multiclass": data.n_classes, "binary": 1, "regression": 1}[report.task]
    if signature.output.shape != [width]:
        problems.append(f"a {report.task} model outputs shape [{width}], signature.output.shape is {signature.output.shape}")
    classes = {"multiclass": data.n_classes, "binary": 2, "regression": 0}[report.task]
    if len(data.class_names) != classes or (report.task != "regression" and data.n_classes != classes):
        problems.append(f"a {report.task} model has {classes} classes, data has n_classes {data.n_classes} "
                        f"and {len(data.class_names)} class_names")
    if len(set(data.class_names)) != len(data.class_names):
        problems.append(f"data.class_names repeats a name: {data.class_names}")
    if len(reference.class_distribution) != len(data.class_names):
        problems.append(f"reference.class_distribution has {len(reference.class_distribution)} shares for {len(data.class_names)} classes")
    outside = [f.index for f in reference.features if f.index >= signature.input.size]
    if outside:
        problems.append(f"reference.features index {outside} past the input's {signature.input.size} values")
    if len({f.index for f in reference.features}) != len(reference.features):
        problems.append("reference.features names a feature twice")
    if (reference.prediction is None) == (report.task == "regression"):
        problems.append(f"reference.prediction must be {'set' if report.task == 'regression' else 'null'} for a {report.task} model")
    return problems
