"""A store entry for a training config: found in the store, or trained, exported, evaluated and written.

Nothing here imports TensorFlow until the entry has to be built, so a store hit stays fast.
"""
from __future__ import annotations

import importlib
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from model.config import TrainConfig
from model.data import Dataset, load
from model.report import DataInfo, Durations, Reference, Report, Training
from model.store import REPORT, Store, StoreEntry, model_id

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
    return store.put(mid, lambda directory: build(config, data, mid, directory, progress))


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


def reference(data: Dataset) -> Reference:
    """Training-split statistics in raw units (docs/contracts.md); the std floor keeps z-scores finite."""
    counts = np.bincount(data.y_train, minlength=data.n_classes)
    return Reference(
        class_distribution=(counts / counts.sum()).tolist(),
        feature_mean=data.x_train.mean(axis=0, dtype=np.float64).tolist(),
        feature_std=np.maximum(data.x_train.std(axis=0, dtype=np.float64), 1e-6).tolist(),
    )


def build(config: TrainConfig, data: Dataset, mid: str, directory: Path, progress: bool = False) -> Report:
    """Trains `config` on `data` and writes the whole entry (but checksums.json) into `directory`."""
    started = time.perf_counter()
    training = importlib.import_module("model.train")
    exporting = importlib.import_module("model.export")
    evaluating = importlib.import_module("model.evaluate")
    card = importlib.import_module("model.card")
    imported = time.perf_counter()

    model, history = training.train(config, data, progress)
    trained = time.perf_counter()

    artifacts = exporting.export(model, directory, data.x_train, config.export)
    exported = time.perf_counter()

    metrics = {
        fmt: evaluating.metrics(data.y_test, evaluating.predict(fmt, directory / rel, data.x_test), data.class_names)
        for fmt, rel in sorted(artifacts.items())
    }
    evaluated = time.perf_counter()

    report = Report(
        model_id=mid,
        created=datetime.now(timezone.utc),
        config=config,
        data=DataInfo(name=data.name, source=data.source, fingerprint=data.fingerprint, n_features=data.n_features,
                      n_classes=data.n_classes, class_names=data.class_names, n_train=len(data.y_train),
                      n_val=len(data.y_val), n_test=len(data.y_test)),
        artifacts=artifacts,
        serving_format=config.export.serving_format,
        metrics=metrics,
        reference=reference(data),
        training=Training(history=history),
        durations=Durations(import_s=imported - started, train_s=trained - imported,
                            export_s=exported - trained, evaluate_s=evaluated - exported),
        versions=_versions(),
        sizes={fmt: _size(directory / rel) for fmt, rel in artifacts.items()},
    )
    card.write(report, directory)
    report = report.model_copy(update={"durations": report.durations.model_copy(
        update={"card_s": time.perf_counter() - evaluated})})
    (directory / REPORT).write_text(report.model_dump_json(indent=2) + "\n")
    return report
