"""The model a store entry ships: the built-in MLP, the user's builder's model, or a pre-trained artifact.

Training is Keras 3 on TensorFlow, deterministic on CPU: same config and data -> same weights and metrics.
Importing this module imports TensorFlow; only the training pipeline (model/pipeline.py) does, lazily.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.config import TrainConfig  # noqa: E402
from model.data import Dataset  # noqa: E402
from model.evaluate import check_output  # noqa: E402
from model.user import UserCodeError, build_user_model, definition, split_ref  # noqa: E402

_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}
LOSSES = {"multiclass": "sparse_categorical_crossentropy", "binary": "binary_crossentropy", "regression": "mse"}
_METRICS = {"multiclass": ["accuracy"], "binary": ["accuracy"], "regression": ["mae"]}
# Batches per tf.function call: fewer Python round trips, the same arithmetic.
_STEPS_PER_EXECUTION = 32
# Rows a builder's model is tried on before training: a wrong output shape fails in seconds, not after fit.
_PROBE_ROWS = 8


def origin(cfg: TrainConfig) -> str:
    """Where the shipped model comes from, as errors name it: the artifact's path or the builder's file:line."""
    if cfg.artifact is not None:
        return f"{cfg.resolve(cfg.artifact)}: artifact"
    if cfg.builder is not None:
        module, name = split_ref(cfg.builder)
        fn = getattr(sys.modules.get(module), name, None)
        if fn is None:
            return f"builder {cfg.builder}"
        file, line = definition(fn)
        return f"{file}:{line}: builder {cfg.builder}"
    return "the built-in model"


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


def builtin_model(cfg: TrainConfig, data: Dataset) -> keras.Model:
    """The seed's MLP: raw input -> normalisation -> hidden Dense layers -> the task's output layer."""
    inputs = keras.Input(data.input_shape, name="features", dtype=data.input_dtype)
    h = keras.layers.Flatten(name="flatten")(inputs) if len(data.input_shape) > 1 else inputs
    h = _normalization(data.x_train.reshape(len(data.x_train), -1).astype(np.float32))(h)
    for i, units in enumerate(cfg.hidden_layers):
        h = keras.layers.Dense(units, activation=cfg.activation, name=f"hidden_{i}")(h)
        if cfg.dropout:
            h = keras.layers.Dropout(cfg.dropout, seed=cfg.seed + i, name=f"dropout_{i}")(h)
    if data.task == "multiclass":
        outputs = keras.layers.Dense(data.n_classes, activation="softmax", name="probabilities")(h)
    elif data.task == "binary":
        outputs = keras.layers.Dense(1, activation="sigmoid", name="probability")(h)
    else:
        # Learnt in standard units and scaled back inside the model: a target in the hundreds would
        # otherwise take thousands of steps for the output bias alone to get there.
        y = data.y_train.astype(np.float64)
        h = keras.layers.Dense(1, name="standardized")(h)
        outputs = keras.layers.Rescaling(scale=float(y.std()) or 1.0, offset=float(y.mean()), name="prediction")(h)
    return keras.Model(inputs, outputs, name="modelship")


def _compiled(model: keras.Model, cfg: TrainConfig, task: str) -> keras.Model:
    """A model the user compiled keeps its own loss and optimizer; any other gets the config's and the task's."""
    if not model.compiled:
        model.compile(
            optimizer=_OPTIMIZERS[cfg.optimizer](learning_rate=cfg.learning_rate),
            loss=LOSSES[task],
            metrics=_METRICS[task],
            steps_per_execution=_STEPS_PER_EXECUTION,
        )
    return model


def check_model(model: keras.Model, data: Dataset, where: str) -> None:
    """One input of the data's shape, one output fitting the task, tried on a few training rows."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except AttributeError:  # a Sequential without an Input, or a subclassed model: the probe below decides
        inputs, outputs = None, None
    if inputs is not None and (len(inputs) != 1 or len(outputs) != 1):
        raise UserCodeError(f"{where}: the model has {len(inputs)} input(s) and {len(outputs)} output(s); "
                            "modelship serves one input tensor and one output tensor")
    if inputs is not None and tuple(inputs[0].shape) != (None, *data.input_shape):
        raise UserCodeError(f"{where}: the model takes input of shape {list(inputs[0].shape)}, the data's rows "
                            f"are {list(data.input_shape)} ({data.input_dtype}); build it with "
                            f"keras.Input({tuple(data.input_shape)}, dtype={data.input_dtype!r})")
    try:
        probe = np.asarray(model(data.x_train[:_PROBE_ROWS], training=False), dtype=np.float64)
    except Exception as e:  # noqa: BLE001 - whatever the user's layers raise is theirs to fix
        raise UserCodeError(f"{where}: the model fails on {min(_PROBE_ROWS, len(data.x_train))} training rows "
                            f"of shape {list(data.input_shape)}: {type(e).__name__}: {e}") from None
    check_output(probe, data.task, data.n_classes, where)


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
    user = cfg.builder is not None
    model = build_user_model(cfg, data) if user else builtin_model(cfg, data)
    where = origin(cfg)
    if user:
        check_model(model, data, where)
    model = _compiled(model, cfg, data.task)
    validation = (data.x_val, data.y_val) if len(data.x_val) else None
    try:
        history = model.fit(
            data.x_train, data.y_train,
            validation_data=validation,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            shuffle=True,
            verbose=0,
            callbacks=[_Progress(cfg.epochs)] if progress else [],
        )
    except Exception as e:  # noqa: BLE001 - a builder's model (its layers, its own compile) may fail in fit
        if not user:
            raise
        raise UserCodeError(f"{where}: training the model failed: {type(e).__name__}: {e}") from None
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}


def load_artifact(cfg: TrainConfig, data: Dataset) -> keras.Model | Path:
    """The pre-trained model `cfg.artifact` names: a loaded `.keras` model, or a SavedModel directory as is."""
    path = cfg.resolve(cfg.artifact)
    where = origin(cfg)
    fix = ("save a Keras model with model.save('model.keras') (custom layers registered with "
           "@keras.saving.register_keras_serializable), or export a SavedModel directory with model.export(dir)")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise UserCodeError(f"{where} is a directory without saved_model.pb, not a SavedModel; {fix}")
        return path
    if not path.is_file():
        raise UserCodeError(f"{where}: no such file or directory (relative paths are under {cfg.root}); {fix}")
    keras.backend.clear_session()
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - Keras raises anything from ValueError to zipfile errors
        raise UserCodeError(f"{where} cannot be loaded as a Keras model ({type(e).__name__}: {e}); {fix}") from None
    if not isinstance(model, keras.Model):
        raise UserCodeError(f"{where} holds a {type(model).__name__}, not a keras.Model; {fix}")
    check_model(model, data, where)
    return model


def architecture(model: keras.Model | Path) -> list[str]:
    """The model's layers as "name: Type [output shape]" (nothing for a SavedModel, which has no Keras layers)."""
    if isinstance(model, Path):
        return []
    layers = []
    for layer in model.layers:
        try:
            shape = f" {list(layer.output.shape[1:])}"
        except (AttributeError, ValueError):  # a layer of a subclassed model has no symbolic output
            shape = ""
        layers.append(f"{layer.name}: {type(layer).__name__}{shape}")
    return layers
