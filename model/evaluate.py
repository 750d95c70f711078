"""Scores of a shipped artifact, from that artifact's own predictions on the test split.

TFLite files run through the LiteRT interpreter (what the server uses), the SavedModel through TensorFlow.
The metrics themselves are scikit-learn's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

from model.report import ClassMetrics, FormatMetrics


def predict_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    return np.array(interpreter.get_tensor(out["index"]), dtype=np.float64)


def predict_saved_model(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept in a name: `serve` dies with the object's variables
    return np.array(loaded.serve(tf.constant(x, tf.float32)), dtype=np.float64)


def predict(format: str, path: Path, x: np.ndarray) -> np.ndarray:
    """Class probabilities `[rows, classes]` from the artifact at `path`."""
    if format == "saved_model":
        return predict_saved_model(path, x)
    if path.suffix == ".tflite":
        return predict_tflite(path, x)
    raise ValueError(f"no evaluator for artifact format {format!r} ({path})")


def metrics(y_true: np.ndarray, proba: np.ndarray, class_names: list[str]) -> FormatMetrics:
    labels = list(range(len(class_names)))
    y_pred = proba.argmax(axis=1)
    # int8 dequantisation leaves rows summing to 1 +- 1/256; cross-entropy is defined on distributions.
    proba = proba / proba.sum(axis=1, keepdims=True)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    averaged = {
        avg: precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)[:3]
        for avg in ("macro", "weighted")
    }
    tp = np.diag(cm)
    fp, fn = cm.sum(axis=0) - tp, cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    per_class = [
        ClassMetrics(label=name, precision=float(precision[i]), recall=float(recall[i]), f1=float(f1[i]),
                     support=int(support[i]), tp=int(tp[i]), fp=int(fp[i]), fn=int(fn[i]), tn=int(tn[i]))
        for i, name in enumerate(class_names)
    ]
    return FormatMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        loss=float(log_loss(y_true, proba, labels=labels)),
        precision_macro=float(averaged["macro"][0]),
        recall_macro=float(averaged["macro"][1]),
        f1_macro=float(averaged["macro"][2]),
        precision_weighted=float(averaged["weighted"][0]),
        recall_weighted=float(averaged["weighted"][1]),
        f1_weighted=float(averaged["weighted"][2]),
        # Classes absent from the test split have no recall to speak of.
        min_class_recall=float(min((recall[i] for i in labels if support[i] > 0), default=0.0)),
        n_samples=int(len(y_true)),
        per_class=per_class,
        confusion_matrix=cm.tolist(),
    )
