"""The model as both protocols see it: one store entry, loaded, checked against its report, warmed up and observed."""
from __future__ import annotations

import os

import numpy as np
from starlette.requests import Request

from app.entry import ServedEntry
from app.errors import ProtocolError
from app.metrics import Metrics
from app.predictor import Predictor
from app.settings import Settings

# The protocols' model version (docs/contracts.md): one servable per image, whose identity is its model id;
# clients of both protocols expect a version, and TF Serving's is numeric.
MODEL_VERSION = "1"

# The metrics a gate usually judges, per task: labels of modelship_model_info (empty when the report lacks one).
INFO_METRICS = {"multiclass": ("accuracy", "f1_macro"), "binary": ("accuracy", "f1_macro", "roc_auc"),
                "regression": ("r2", "mae", "rmse")}


class ServedModel:
    def __init__(self, settings: Settings):
        self.name = settings.model_name
        self.version = MODEL_VERSION
        self.max_batch = settings.max_batch
        self.entry = ServedEntry(settings.model_dir)
        report = self.entry.report
        self.task = report.task
        self.signature = report.signature
        self.class_names = report.data.class_names
        self.predictor = Predictor(self.entry.model_path)
        self.entry.check_model(self.predictor.input_shape, self.predictor.input_dtype, self.predictor.output_shape)
        self.metrics = Metrics(
            task=report.task,
            class_names=self.class_names,
            reference=report.reference,
            info={
                "model_id": report.model_id,
                "task": report.task,
                "format": self.entry.format,
                # Set by the image build from the gate result; a bare `python -m app` has not been gated.
                "gate_passed": os.environ.get("GATE_PASSED", "unknown"),
                **{name: _label(self.entry.metric(name)) for name in INFO_METRICS[report.task]},
            },
        )
        self.ready = False

    def warm_up(self) -> None:
        """One inference on zeros of the input's shape and dtype, so the first request pays no allocation; then ready."""
        zeros = np.zeros([1, *self.signature.input.shape], dtype=self.signature.input.dtype)
        outputs = self.predictor.predict(zeros)
        if outputs.shape != (1, *self.signature.output.shape) or not np.isfinite(outputs).all():
            raise RuntimeError(f"warm-up inference on {self.entry.model_path} gave {outputs!r}")
        self.ready = True

    def predict(self, batch: np.ndarray) -> np.ndarray:
        try:
            outputs = self.predictor.predict(batch)
        except RuntimeError as e:
            # LiteRT's kernels check what no signature states, e.g. a token id past an embedding's vocabulary.
            raise ProtocolError(400, f"the model cannot compute this input: {' '.join(str(e).split())} "
                                     "(for token ids: are they all within the model's vocabulary?)") from None
        self.metrics.observe_predictions(batch, outputs)
        return outputs


def served(request: Request) -> ServedModel:
    """The model a request's path names (`{name}`, and `{version}` where the route has one), or a 404 that says
    what this server serves: both protocols address the one model the same way."""
    model: ServedModel = request.app.state.model
    name = request.path_params["name"]
    version = request.path_params.get("version")
    serves = f"this server serves model {model.name!r} version {model.version!r}"
    if name != model.name:
        raise ProtocolError(404, f"model {name!r} not found: {serves}")
    if version is not None and version != model.version:
        raise ProtocolError(404, f"model {name!r} has no version {version!r}: {serves}")
    return model


def _label(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
