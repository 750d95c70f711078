"""The artifacts a store entry ships: a SavedModel (Keras `export`) and TFLite converted from it.

TFLite is converted from the exported SavedModel, not from the in-memory model, so every shipped artifact
descends from the one on disk. int8 keeps float32 input and output: the server speaks raw features either way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import keras
import numpy as np
import tensorflow as tf

from model.config import ExportConfig

SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"
TFLITE_INT8 = "model_int8.tflite"


def export(model: keras.Model, directory: Path, x_train: np.ndarray, cfg: ExportConfig) -> dict[str, str]:
    """Writes the artifacts into `directory`; returns `{format: relative path}` (report.json's `artifacts`)."""
    saved = directory / SAVED_MODEL
    model.export(str(saved), format="tf_saved_model", verbose=False)
    artifacts = {"saved_model": SAVED_MODEL}

    (directory / TFLITE).write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    artifacts["tflite"] = TFLITE

    if cfg.int8:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        rows = x_train[: cfg.representative_rows].astype(np.float32)

        def representative() -> Iterator[list[np.ndarray]]:
            for row in rows:
                yield [row[None, :]]

        converter.representative_dataset = representative
        (directory / TFLITE_INT8).write_bytes(converter.convert())
        artifacts["tflite_int8"] = TFLITE_INT8
    return artifacts
