"""The artifacts a store entry ships: a SavedModel and TFLite converted from it, and the signature they serve.

TFLite is converted from the SavedModel on disk, not from the in-memory model, so every shipped artifact
descends from the one on disk. A pre-trained SavedModel directory is copied as it is. int8 keeps the input
and output types: the server speaks raw inputs either way.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import keras
import numpy as np
import tensorflow as tf

from app.entry import Signature, Tensor
from model.config import ExportConfig
from model.user import UserCodeError

SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"
TFLITE_INT8 = "model_int8.tflite"
_DTYPES = {tf.float32: "float32", tf.int32: "int32"}


def signature(saved: Path, where: str) -> Signature:
    """The SavedModel's serving signature: one input of fixed shape (float32 or int32), one output."""
    try:
        serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    except Exception as e:  # noqa: BLE001 - a damaged SavedModel fails in protobuf, the loader or the lookup
        raise UserCodeError(f"{where}: the SavedModel has no loadable serving_default signature "
                            f"({type(e).__name__}: {e}); export it with keras.Model.export(dir) or "
                            "tf.saved_model.save(model, dir, signatures=...)") from None
    inputs, outputs = serve.structured_input_signature[1], serve.structured_outputs
    if len(inputs) != 1 or not isinstance(outputs, dict) or len(outputs) != 1:
        raise UserCodeError(f"{where}: the model has {len(inputs)} input(s) ({', '.join(inputs)}) and "
                            f"{len(outputs)} output(s); modelship serves one input tensor and one output tensor")
    tensors = {}
    for role, (name, spec) in (("input", *inputs.items()), ("output", *outputs.items())):
        dims = spec.shape.as_list()[1:]
        if spec.shape.rank is None or spec.shape.rank < 1 or any(d is None for d in dims):
            raise UserCodeError(f"{where}: the model's {role} {name!r} has shape {spec.shape}; modelship needs "
                                "[batch, *fixed dimensions], e.g. keras.Input((28, 28, 1))")
        allowed = (tf.float32, tf.int32) if role == "input" else (tf.float32,)
        if spec.dtype not in allowed:
            raise UserCodeError(f"{where}: the model's {role} {name!r} is {spec.dtype.name}; modelship serves "
                                f"{' or '.join(_DTYPES[d] for d in allowed)} {role}s")
        tensors[role] = Tensor(name=name, dtype=_DTYPES[spec.dtype], shape=dims)
    return Signature(**tensors)


def _convert(converter: tf.lite.TFLiteConverter, what: str, where: str, fix: str) -> bytes:
    try:
        return converter.convert()
    except Exception as e:  # noqa: BLE001 - the converter raises whatever its MLIR passes raise
        detail = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
        raise UserCodeError(f"{where}: {what} failed ({detail}); {fix}") from None


def export(model: keras.Model | Path, directory: Path, x_train: np.ndarray, cfg: ExportConfig,
           where: str) -> tuple[dict[str, str], Signature]:
    """Writes the artifacts into `directory` from a Keras model or a SavedModel directory.

    Returns `{format: relative path}` (report.json's `artifacts`) and the served signature. `where` names
    the model's origin (builder or artifact) in errors.
    """
    saved = directory / SAVED_MODEL
    if isinstance(model, Path):
        shutil.copytree(model, saved)
    else:
        model.export(str(saved), format="tf_saved_model", verbose=False)
    served = signature(saved, where)
    artifacts = {"saved_model": SAVED_MODEL}

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    (directory / TFLITE).write_bytes(_convert(converter, "conversion to TFLite", where,
                                              "the image serves TFLite: use layers made of TFLite builtin ops"))
    artifacts["tflite"] = TFLITE

    if cfg.int8:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        rows = x_train[: cfg.representative_rows].astype(served.input.dtype)

        def representative() -> Iterator[list[np.ndarray]]:
            for i in range(len(rows)):
                yield [rows[i : i + 1]]

        converter.representative_dataset = representative
        (directory / TFLITE_INT8).write_bytes(_convert(converter, "int8 quantisation (export.int8: true)", where,
                                                       "set export.int8: false to ship float32 only"))
        artifacts["tflite_int8"] = TFLITE_INT8
    return artifacts, served
