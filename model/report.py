"""`report.json` of a store entry as model/ writes it (docs/contracts.md): what was trained, on what, and how
every artifact scored. The fields readers rely on, and their types, are `app.entry.Report`'s, which this extends."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from app.entry import Data, Report, Task
from model.config import TrainConfig

# Bounds of a metric's value, shared with the gate's thresholds (model/gate.py builds its fields from these).
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
AtMostOne = Annotated[float, Field(le=1.0)]


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


class TaskMetrics(_Record):
    """One artifact's scores on the test split, from that artifact's own predictions."""

    task: Task
    n_samples: int

    def scalars(self) -> dict[str, float]:
        """The numeric metrics a gate can judge (what infra records and promotion re-checks)."""
        return {k: v for k, v in self.model_dump().items() if isinstance(v, float)}


class _ClassificationMetrics(TaskMetrics):
    accuracy: Fraction
    precision_macro: Fraction
    recall_macro: Fraction
    f1_macro: Fraction
    precision_weighted: Fraction
    recall_weighted: Fraction
    f1_weighted: Fraction
    # The weakest class's recall, so a gate on per-class recall is one number like the others.
    min_class_recall: Fraction
    loss: NonNegative = Field(description="log loss (cross-entropy)")
    per_class: list[ClassMetrics]
    confusion_matrix: list[list[int]]


class MulticlassMetrics(_ClassificationMetrics):
    task: Literal["multiclass"] = "multiclass"


class BinaryMetrics(_ClassificationMetrics):
    """Multiclass's metrics over the two classes at threshold 0.5, plus class 1's and the threshold-free ones."""

    task: Literal["binary"] = "binary"
    precision: Fraction
    recall: Fraction
    f1: Fraction
    # None when the test split holds one class only: the curves are undefined.
    roc_auc: Optional[Fraction]
    pr_auc: Optional[Fraction] = Field(description="average precision")


class RegressionMetrics(TaskMetrics):
    task: Literal["regression"] = "regression"
    mae: NonNegative
    rmse: NonNegative
    r2: AtMostOne
    loss: NonNegative = Field(description="mean squared error")


METRIC_TYPES: dict[str, type[TaskMetrics]] = {
    "multiclass": MulticlassMetrics, "binary": BinaryMetrics, "regression": RegressionMetrics}
Metrics = Annotated[Union[MulticlassMetrics, BinaryMetrics, RegressionMetrics], Field(discriminator="task")]


class DataInfo(Data):
    """The data section as model/ writes it: the readers' fields, and where the data came from and its splits."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    source: str
    fingerprint: str
    n_train: int
    n_val: int
    n_test: int


class Training(_Record):
    history: dict[str, list[float]]


class Durations(_Record):
    import_s: float
    train_s: float
    export_s: float
    evaluate_s: float
    card_s: float = 0.0


class TrainingReport(Report):
    """report.json as model/ writes it: the fields its readers rely on (`app.entry.Report`, the one schema of
    those), typed per task, plus how the model was made."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    created: datetime
    config: TrainConfig
    # The shipped model's layers, "name: Type", from the model itself (empty for a SavedModel artifact).
    architecture: list[str]
    data: DataInfo
    metrics: dict[str, Metrics]
    training: Training
    durations: Durations
    versions: dict[str, str]
    sizes: dict[str, int] = Field(default_factory=dict, description="bytes per artifact")

    def served_metrics(self) -> TaskMetrics:
        return self.metrics[self.serving_format]

    @property
    def trained(self) -> bool:
        """False for a pre-trained artifact, which ships as it came."""
        return self.config.artifact is None
