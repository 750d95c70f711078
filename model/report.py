"""`report.json` of a store entry (docs/contracts.md): what was trained, on what, and how every artifact scored."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from model.config import Task, TrainConfig

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


class Tensor(_Record):
    name: str
    dtype: Literal["float32", "int32"]
    shape: list[int]


class Signature(_Record):
    """The served model's one input and one output, without the batch dimension."""

    input: Tensor
    output: Tensor


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


class Bins(_Record):
    """Quantile bins of one training-split series: `v` falls in bin `searchsorted(edges, v, side="right")`."""

    edges: list[float]
    ratios: list[float]


class FeatureBins(Bins):
    index: int = Field(ge=0, description="flat index into the input")


class Reference(_Record):
    """Training-split statistics in raw input units: the baseline drift is measured against."""

    class_distribution: list[float]
    features: list[FeatureBins]
    prediction: Optional[Bins] = None


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
    task: Task
    config: TrainConfig
    signature: Signature
    # The shipped model's layers, "name: Type", from the model itself (empty for a SavedModel artifact).
    architecture: list[str]
    data: DataInfo
    artifacts: dict[str, str]
    serving_format: str
    metrics: dict[str, Metrics]
    reference: Reference
    training: Training
    durations: Durations
    versions: dict[str, str]
    sizes: dict[str, int] = Field(default_factory=dict, description="bytes per artifact")

    def served(self) -> TaskMetrics:
        return self.metrics[self.serving_format]

    @property
    def trained(self) -> bool:
        """False for a pre-trained artifact, which ships as it came."""
        return self.config.artifact is None
