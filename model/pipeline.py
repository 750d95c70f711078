"""The training pipeline: a store entry for a training config, found in the store, or trained, exported,
evaluated and written (`write_entry`).

Nothing here imports TensorFlow until the entry has to be built, so a store hit stays fast.
"""
from __future__ import annotations

import importlib
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from app.entry import Bins, FeatureBins, Reference
from model.config import MonitorConfig, TrainConfig
from model.data import Dataset, load
from model.report import DataInfo, Durations, Training, TrainingReport
from model.store import REPORT, Store, StoreEntry, model_id
from model.user import UserCodeError

# Distribution name -> module name.
_VERSIONED = {"tensorflow": "tensorflow", "keras": "keras", "numpy": "numpy", "scikit-learn": "sklearn",
              "ai-edge-litert": "ai_edge_litert"}


def identify(config: TrainConfig) -> tuple[str, Dataset]:
    """The model id of `config` on its data, and the loaded data.

    Runs the user's loader (its data is fingerprinted) but imports neither TensorFlow nor the builder's
    module: their code enters the id by its bytes.
    """
    data = load(config.data, config.task, config.root, config.params)
    return model_id(config, data.fingerprint), data


def trained_entry(config: TrainConfig, store: Store, progress: bool = False) -> StoreEntry:
    """The verified store entry for `config`: reused when stored, else built once (even across processes)."""
    mid, data = identify(config)
    return store.put(mid, lambda directory: write_entry(config, data, mid, directory, progress))


def _versions() -> dict[str, str]:
    """Versions of what the build ran, read from the imported modules (the TensorFlow wheel may be tensorflow-cpu)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name, module in _VERSIONED.items():
        value = getattr(sys.modules.get(module), "__version__", None)
        if value is None:
            try:
                value = version(name)
            except PackageNotFoundError:
                continue
        found[name] = str(value)
    return found


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bins(values: np.ndarray, n_bins: int) -> Bins:
    """Quantile bins of `values`: distinct interior cut points, and the share of values in each bin.

    A value `v` is in bin `searchsorted(edges, v, side="right")` (docs/contracts.md), which holds for any
    sign. A feature with few distinct values gets fewer edges: equal cut points are one, and a cut point at
    the minimum is dropped (its bin below would hold no training value, an infinite term in a PSI).
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    edges = edges[edges > values.min()]
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return Bins(edges=edges.tolist(), ratios=(counts / len(values)).tolist())


def reference(data: Dataset, monitor: MonitorConfig, train_predictions: Optional[np.ndarray]) -> Reference:
    """The drift baseline from the training split, in raw units (docs/contracts.md).

    Only the `monitor.features` most variable input values get bins, so the series a server exports stay
    bounded however wide the input (a 28x28 image has 784 values).
    """
    flat = data.x_train.reshape(len(data.x_train), -1).astype(np.float64)
    chosen = sorted(np.argsort(-flat.var(axis=0), kind="stable")[: monitor.features].tolist())
    if data.task == "regression":
        classes: list[float] = []
    else:
        counts = np.bincount(data.y_train, minlength=data.n_classes)
        classes = (counts / counts.sum()).tolist()
    return Reference(
        class_distribution=classes,
        features=[FeatureBins(index=i, **bins(flat[:, i], monitor.bins).model_dump()) for i in chosen],
        prediction=bins(train_predictions, monitor.bins) if train_predictions is not None else None,
    )


def write_entry(config: TrainConfig, data: Dataset, mid: str, directory: Path, progress: bool = False) -> TrainingReport:
    """Trains (or loads) the model of `config`, and writes the whole entry (but checksums.json) into `directory`.

    Any problem with the user's code or artifact raises UserCodeError here, inside the store's build
    directory, which the store removes: nothing is registered.
    """
    started = time.perf_counter()
    training = importlib.import_module("model.train")
    exporting = importlib.import_module("model.export")
    evaluating = importlib.import_module("model.evaluate")
    card = importlib.import_module("model.card")
    imported = time.perf_counter()

    if config.artifact is not None:
        model, history = training.load_artifact(config, data), {}
    else:
        model, history = training.train(config, data, progress)
    where = training.origin(config)
    trained = time.perf_counter()

    artifacts, signature = exporting.export(model, directory, data.x_train, config.export, where)
    if signature.input.shape != list(data.input_shape):
        raise UserCodeError(f"{where}: the model takes input {signature.input.shape}, the data's rows are "
                            f"{list(data.input_shape)}")
    exported = time.perf_counter()

    metrics, outputs = {}, {}
    for fmt, rel in sorted(artifacts.items()):
        outputs[fmt] = evaluating.predict(fmt, directory / rel, data.x_test)
        evaluating.check_output(outputs[fmt], data.task, data.n_classes, f"{where} ({fmt} artifact, test split)")
        metrics[fmt] = evaluating.metrics(data.task, data.y_test, outputs[fmt], data.class_names)
    served = config.export.serving_format
    train_predictions = (evaluating.predict(served, directory / artifacts[served], data.x_train)
                         if data.task == "regression" else None)
    evaluated = time.perf_counter()

    report = TrainingReport(
        model_id=mid,
        created=datetime.now(timezone.utc),
        task=data.task,
        config=config,
        signature=signature,
        architecture=training.architecture(model),
        data=DataInfo(name=data.name, source=data.source, fingerprint=data.fingerprint, n_features=data.n_features,
                      n_classes=data.n_classes, class_names=data.class_names, n_train=len(data.y_train),
                      n_val=len(data.y_val), n_test=len(data.y_test)),
        artifacts=artifacts,
        serving_format=served,
        metrics=metrics,
        reference=reference(data, config.monitor, train_predictions),
        training=Training(history=history),
        durations=Durations(import_s=imported - started, train_s=trained - imported,
                            export_s=exported - trained, evaluate_s=evaluated - exported),
        versions=_versions(),
        sizes={fmt: _size(directory / rel) for fmt, rel in artifacts.items()},
    )
    card.write(report, directory, data.y_test, outputs[served])
    report = report.model_copy(update={"durations": report.durations.model_copy(
        update={"card_s": time.perf_counter() - evaluated})})
    (directory / REPORT).write_text(report.model_dump_json(indent=2) + "\n")
    return report
