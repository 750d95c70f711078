"""Scores of a shipped artifact, from that artifact's own predictions on the test split.

TFLite files run through the LiteRT interpreter (what the server uses), the SavedModel through TensorFlow's
serving signature (what TF Serving would call). The metrics themselves are scikit-learn's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, log_loss,
                             mean_absolute_error, mean_squared_error, precision_recall_fscore_support, r2_score,
                             roc_auc_score, root_mean_squared_error)

from model.report import BinaryMetrics, ClassMetrics, MulticlassMetrics, RegressionMetrics, Task, TaskMetrics
from model.user import UserCodeError

# int8 dequantisation leaves softmax rows summing to 1 within about n_classes/512; logits miss by far more.
_ROW_SUM_TOLERANCE = 0.05


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

    loaded = tf.saved_model.load(str(path))  # kept in a name: the signature dies with the object's variables
    serve = loaded.signatures["serving_default"]
    ((name, spec),) = serve.structured_input_signature[1].items()
    (output,) = serve(**{name: tf.constant(x, spec.dtype)}).values()
    return np.array(output, dtype=np.float64)


def predict(format: str, path: Path, x: np.ndarray) -> np.ndarray:
    """The model's output `[rows, *output shape]` from the artifact at `path`."""
    if format == "saved_model":
        return predict_saved_model(path, x)
    if path.suffix == ".tflite":
        return predict_tflite(path, x)
    raise ValueError(f"no evaluator for artifact format {format!r} ({path})")


def _found(output: np.ndarray) -> str:
    shape = f"[batch, {', '.join(str(d) for d in output.shape[1:])}]" if output.ndim > 1 else "[batch]"
    if output.size == 0 or not np.all(np.isfinite(output)):
        return f"{shape} holding NaN or infinite values" if output.size else f"{shape}, empty"
    found = f"{shape} with values in [{output.min():.4g}, {output.max():.4g}]"
    if output.ndim == 2 and output.shape[1] > 1:
        sums = output.sum(axis=1)
        found += f", rows summing to [{sums.min():.4g}, {sums.max():.4g}]"
    return found


def check_output(output: np.ndarray, task: Task, n_classes: int, where: str) -> None:
    """Raises UserCodeError (naming `where`: the builder or artifact) unless `output` is what `task` needs."""
    finite = output.size > 0 and bool(np.all(np.isfinite(output)))
    probabilities = finite and output.min() >= 0.0 and output.max() <= 1.0
    if task == "multiclass":
        expected = f"[batch, {n_classes}] class probabilities (softmax), each row summing to 1"
        fits = (probabilities and output.ndim == 2 and output.shape[1] == n_classes
                and bool(np.all(np.abs(output.sum(axis=1) - 1.0) <= max(_ROW_SUM_TOLERANCE, n_classes / 256))))
    elif task == "binary":
        expected = "[batch, 1] probability of class 1 (sigmoid), in [0, 1]"
        fits = probabilities and output.ndim == 2 and output.shape[1] == 1
    else:
        expected = "[batch, 1] (or [batch]) the predicted target"
        fits = finite and (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1))
    if not fits:
        raise UserCodeError(f"{where}: the model's output does not fit task {task}: expected {expected}, "
                            f"found {_found(output)}")


def _classification(y_true: np.ndarray, proba: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """The metrics every classification task reports, from probabilities `[rows, classes]` and hard predictions."""
    labels = list(range(len(class_names)))
    # Cross-entropy is defined on distributions; int8 rows only sum to 1 approximately.
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
    return dict(
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


def multiclass(y_true: np.ndarray, proba: np.ndarray, class_names: list[str]) -> MulticlassMetrics:
    return MulticlassMetrics(**_classification(y_true, proba, proba.argmax(axis=1), class_names))


def binary(y_true: np.ndarray, p: np.ndarray, class_names: list[str]) -> BinaryMetrics:
    """`p`: the probability of class 1 per row; a row is predicted class 1 when p >= 0.5."""
    p = p.reshape(-1)
    y_pred = (p >= 0.5).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1], pos_label=1,
                                                               average="binary", zero_division=0)
    both = len(np.unique(y_true)) == 2
    return BinaryMetrics(
        **_classification(y_true, np.column_stack([1.0 - p, p]), y_pred, class_names),
        precision=float(precision), recall=float(recall), f1=float(f1),
        roc_auc=float(roc_auc_score(y_true, p)) if both else None,
        pr_auc=float(average_precision_score(y_true, p)) if both else None,
    )


def regression(y_true: np.ndarray, predicted: np.ndarray) -> RegressionMetrics:
    predicted = predicted.reshape(-1)
    return RegressionMetrics(
        mae=float(mean_absolute_error(y_true, predicted)),
        rmse=float(root_mean_squared_error(y_true, predicted)),
        r2=float(r2_score(y_true, predicted)),
        loss=float(mean_squared_error(y_true, predicted)),
        n_samples=int(len(y_true)),
    )


def metrics(task: Task, y_true: np.ndarray, output: np.ndarray, class_names: list[str]) -> TaskMetrics:
    """The task's metrics of a model output that passed `check_output`."""
    if task == "multiclass":
        return multiclass(y_true, output, class_names)
    if task == "binary":
        return binary(y_true, output, class_names)
    return regression(y_true, output)
