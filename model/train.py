"""Keras 3 training on TensorFlow, deterministic on CPU: same config and data -> same weights and metrics.

Importing this module imports TensorFlow; only the build path (model/build.py) does, lazily.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.config import TrainConfig  # noqa: E402
from model.data import Dataset  # noqa: E402

_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}
# Batches per tf.function call: fewer Python round trips, the same arithmetic.
_STEPS_PER_EXECUTION = 32


def _normalization(x: np.ndarray) -> keras.layers.Normalization:
    """Standardisation from the training split, inside the model, so the model takes raw features.

    A feature (nearly) constant in training would get a huge scale: a pixel that is always blank would turn
    any ink at serving time into a 1e7 activation, and int8 quantisation of the scale vector would flatten
    every other feature to zero. Scales are therefore floored at a tenth of the largest feature's.
    """
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.maximum(std, 0.1 * float(std.max()) if std.max() > 0 else 1.0)
    return keras.layers.Normalization(mean=mean, variance=std**2, name="normalize")


def build(cfg: TrainConfig, data: Dataset) -> keras.Model:
    inputs = keras.Input((data.n_features,), name="features", dtype="float32")
    h = _normalization(data.x_train)(inputs)
    for i, units in enumerate(cfg.hidden_layers):
        h = keras.layers.Dense(units, activation=cfg.activation, name=f"hidden_{i}")(h)
        if cfg.dropout:
            h = keras.layers.Dropout(cfg.dropout, seed=cfg.seed + i, name=f"dropout_{i}")(h)
    outputs = keras.layers.Dense(data.n_classes, activation="softmax", name="probabilities")(h)
    model = keras.Model(inputs, outputs, name="modelship")
    model.compile(
        optimizer=_OPTIMIZERS[cfg.optimizer](learning_rate=cfg.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=_STEPS_PER_EXECUTION,
    )
    return model


class _Progress(keras.callbacks.Callback):
    """One line per epoch on stderr (stdout is the CLI's JSON)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
        print(f"epoch {epoch + 1}/{self.epochs}  {shown}", file=sys.stderr, flush=True)


def train(cfg: TrainConfig, data: Dataset, progress: bool = False) -> tuple[keras.Model, dict[str, list[float]]]:
    """A freshly seeded model trained on `data`; returns it and its per-epoch history."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    model = build(cfg, data)
    validation = (data.x_val, data.y_val) if len(data.x_val) else None
    history = model.fit(
        data.x_train, data.y_train,
        validation_data=validation,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[_Progress(cfg.epochs)] if progress else [],
    )
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}
