"""`report.json` of a store entry (docs/contracts.md): what was trained, on what, and how every artifact scored."""
from __future__ import annotations

from datetime import datetime
from pydantic import BaseModel, ConfigDict, Field

from model.config import TrainConfig


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassMetrics(_Record):
    label: str
    precision: float
    recall: float
    f1: float
    support: int
    tp: int
    fp: int
    fn: int
    tn: int


class FormatMetrics(_Record):
    """One artifact's scores on the test split, from that artifact's own predictions."""

    accuracy: float
    loss: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    # The weakest class's recall, so a gate on per-class recall is one number like the others.
    min_class_recall: float
    n_samples: int
    per_class: list[ClassMetrics]
    confusion_matrix: list[list[int]]

    def scalars(self) -> dict[str, float]:
        """The numeric metrics a gate can judge (what infra records and promotion re-checks)."""
        return {k: v for k, v in self.model_dump().items() if isinstance(v, float)}


class DataInfo(_Record):
    name: str
    source: str
    fingerprint: str
    n_features: int
    n_classes: int
    class_names: list[str]
    n_train: int
    n_val: int
    n_test: int


class Reference(_Record):
    """Training-split statistics in raw feature units: the baseline drift is measured against."""

    class_distribution: list[float]
    feature_mean: list[float]
    feature_std: list[float]


class Training(_Record):
    history: dict[str, list[float]]


class Durations(_Record):
    import_s: float
    train_s: float
    export_s: float
    evaluate_s: float
    card_s: float = 0.0


class Report(_Record):
    model_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: datetime
    config: TrainConfig
    data: DataInfo
    artifacts: dict[str, str]
    serving_format: str
    metrics: dict[str, FormatMetrics]
    reference: Reference
    training: Training
    durations: Durations
    versions: dict[str, str]
    sizes: dict[str, int] = Field(default_factory=dict, description="bytes per artifact")

    def served(self) -> FormatMetrics:
        return self.metrics[self.serving_format]
