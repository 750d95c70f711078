"""A real store entry (docs/contracts.md) for the app tests: tiny Keras model on sklearn digits -> TFLite.

Stands in for `python -m model train` until model/ lands; it writes the fields app/ reads, from real
training, so the server is tested against a real model and not a mock of one.
"""
from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np


def build(store: Path) -> Path:
    """Trains, exports and writes `<store>/<model_id>/`; returns the entry directory."""
    import keras
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype("float32")
    y = digits.target.astype("int64")
    n_features, n_classes = x.shape[1], 10
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    model = keras.Sequential(
        [keras.Input((n_features,), name="features"), norm,
         keras.layers.Dense(32, activation="relu"), keras.layers.Dense(n_classes, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=64, verbose=0)
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()

    fingerprint = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    model_id = hashlib.sha256(b"tests/app fixture" + fingerprint.encode()).hexdigest()
    entry = store / model_id
    entry.mkdir(parents=True)
    (entry / "model.tflite").write_bytes(tflite)
    model.export(str(entry / "saved_model"), verbose=False)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    report = {
        "model_id": model_id,
        "created": datetime.now(timezone.utc).isoformat(),
        "config": {"epochs": 5},
        "data": {"name": "digits", "fingerprint": fingerprint, "n_features": n_features, "n_classes": n_classes,
                 "class_names": [str(c) for c in range(n_classes)],
                 "n_train": len(x), "n_val": 0, "n_test": 0},
        "artifacts": {"tflite": "model.tflite", "saved_model": "saved_model"},
        "serving_format": "tflite",
        "metrics": {"tflite": {"accuracy": float(accuracy), "loss": float(loss), "f1_macro": float(accuracy)}},
        "reference": {
            "class_distribution": (np.bincount(y, minlength=n_classes) / len(y)).tolist(),
            "feature_mean": x.mean(axis=0).tolist(),
            "feature_std": np.maximum(x.std(axis=0), 1e-6).tolist(),
        },
        "training": {"history": {k: [float(v) for v in vs] for k, vs in history.history.items()}},
        "durations": {},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
    }
    (entry / "report.json").write_text(json.dumps(report, indent=2))
    files = sorted(p for p in entry.rglob("*") if p.is_file() and p.name != "checksums.json")
    checksums = {"files": {p.relative_to(entry).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}}
    (entry / "checksums.json").write_text(json.dumps(checksums, indent=2))
    return entry


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
