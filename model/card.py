"""The model card of a store entry: model_card.md with the task's plot and, for a trained model, its curves.

Plots per task (docs/contracts.md): confusion matrix (classification), ROC curve (binary), predicted vs
true (regression); the training curves only when the entry trained its model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from model.report import TaskMetrics, TrainingReport  # noqa: E402

CARD = "model_card.md"
CONFUSION_PNG = "confusion_matrix.png"
ROC_PNG = "roc_curve.png"
SCATTER_PNG = "predicted_vs_true.png"
CURVES_PNG = "training_curves.png"
# No timestamps or versions inside the pictures: the same report draws the same bytes.
_PNG_METADATA = {"Software": None}
# The metrics table's columns per task, in the order people read them.
_COLUMNS = {
    "multiclass": ["accuracy", "loss", "precision_macro", "recall_macro", "f1_macro", "min_class_recall"],
    "binary": ["accuracy", "loss", "precision", "recall", "f1", "roc_auc", "pr_auc", "min_class_recall"],
    "regression": ["mae", "rmse", "r2", "loss"],
}


def _title(report: TrainingReport) -> str:
    return f"{report.serving_format}, test split (n={report.served_metrics().n_samples})"


def confusion_png(report: TrainingReport, path: Path) -> None:
    served = report.served_metrics()
    names = report.data.class_names
    n = len(names)
    fig = Figure(figsize=(1.2 + 0.45 * max(n, 4), 1.0 + 0.45 * max(n, 4)), dpi=100)
    ax = fig.subplots()
    image = ax.imshow(served.confusion_matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    peak = max(max(row) for row in served.confusion_matrix) or 1
    for i, row in enumerate(served.confusion_matrix):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > peak / 2 else "black")
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_title(report))
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_METADATA)


def roc_png(report: TrainingReport, y_true: np.ndarray, output: np.ndarray, path: Path) -> None:
    fig = Figure(figsize=(4.5, 4.5), dpi=100)
    ax = fig.subplots()
    if len(np.unique(y_true)) == 2:
        fpr, tpr, _ = roc_curve(y_true, output.reshape(-1))
        ax.plot(fpr, tpr, label=f"ROC AUC {report.served_metrics().roc_auc:.4f}")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel(f"true positive rate ({report.data.class_names[1]})")
    ax.set_title(_title(report))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_METADATA)


def scatter_png(report: TrainingReport, y_true: np.ndarray, output: np.ndarray, path: Path) -> None:
    predicted = output.reshape(-1)
    fig = Figure(figsize=(4.5, 4.5), dpi=100)
    ax = fig.subplots()
    ax.scatter(y_true, predicted, s=8, alpha=0.6)
    low, high = float(min(y_true.min(), predicted.min())), float(max(y_true.max(), predicted.max()))
    ax.plot([low, high], [low, high], ":", color="grey", label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"{_title(report)}, R² {report.served_metrics().r2:.3f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_METADATA)


def curves_png(report: TrainingReport, path: Path) -> None:
    history = report.training.history
    # Loss, and the first metric the model was compiled with (accuracy, mae, or the user's own).
    shown = ["loss"] + [k for k in history if k != "loss" and not k.startswith("val_")][:1]
    fig = Figure(figsize=(4.5 * len(shown), 3.5), dpi=100)
    axes = np.atleast_1d(fig.subplots(1, len(shown)))
    for ax, metric in zip(axes, shown):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if history.get(key):
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_METADATA)


def _cell(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _task_line(report: TrainingReport) -> str:
    data, sig = report.data, report.signature
    takes = f"raw input {sig.input.dtype} {sig.input.shape} (`{sig.input.name}`)"
    if report.task == "multiclass":
        return (f"classify {takes} into {data.n_classes} classes ({', '.join(data.class_names)}); "
                "outputs class probabilities.")
    if report.task == "binary":
        return (f"binary classification of {takes}; outputs the probability of class `{data.class_names[1]}` "
                f"(vs `{data.class_names[0]}`), predicted at >= 0.5.")
    return f"predict a numeric target from {takes}; outputs the prediction in the target's units."


def _model_lines(report: TrainingReport) -> list[str]:
    cfg = report.config
    layers = " -> ".join(report.architecture) or "a SavedModel (no Keras layers recorded)"
    if cfg.artifact is not None:
        source = f"pre-trained artifact `{cfg.artifact}`, shipped without training"
    elif cfg.builder is not None:
        source = f"builder `{cfg.builder}` with params `{cfg.params}`"
    else:
        source = f"the built-in MLP (dropout {cfg.dropout})"
    lines = [f"- **Model**: {source}", f"- **Architecture**: {layers}"]
    if report.trained:
        optimizer = f"{cfg.optimizer} lr {cfg.learning_rate}" + (" unless the builder compiled the model" if cfg.builder else "")
        lines.append(f"- **Training**: {optimizer}, {cfg.epochs} epochs, batch {cfg.batch_size}, seed {cfg.seed}")
    return lines


def _metrics_table(report: TrainingReport) -> list[str]:
    columns = _COLUMNS[report.task]
    rows = []
    for fmt, m in report.metrics.items():
        values = m.model_dump()
        rows.append(f"| {fmt} | {report.artifacts.get(fmt, '')} | {report.sizes.get(fmt, 0):,} | "
                    + " | ".join(_cell(values[c]) for c in columns) + " |")
    return [f"| format | file | bytes | {' | '.join(columns)} |", "|---|---|---|" + "---|" * len(columns), *rows]


def _per_class(report: TrainingReport, served: TaskMetrics) -> list[str]:
    if report.task == "regression":
        return []
    return [
        f"## Per class ({report.serving_format})",
        "",
        "| class | precision | recall | F1 | support | TP | FP | FN | TN |",
        "|---|---|---|---|---|---|---|---|---|",
        *[f"| {c.label} | {c.precision:.4f} | {c.recall:.4f} | {c.f1:.4f} | {c.support} | {c.tp} | {c.fp} | {c.fn} | {c.tn} |"
          for c in served.per_class],
        "",
        f"![Confusion matrix]({CONFUSION_PNG})",
        "",
    ]


def markdown(report: TrainingReport) -> str:
    cfg, data, d = report.config, report.data, report.durations
    plots = {"binary": [f"![ROC curve]({ROC_PNG})", ""], "regression": [f"![Predicted vs true]({SCATTER_PNG})", ""]}
    training = (["## Training", "", f"![Training curves]({CURVES_PNG})", ""] if report.trained
                else ["## Training", "", "None: a pre-trained artifact, evaluated as shipped.", ""])
    versions = ", ".join(f"{k} {v}" for k, v in sorted(report.versions.items()))
    return "\n".join([
        f"# Model card: `{report.model_id[:12]}`",
        "",
        f"- **Model id**: `{report.model_id}`",
        f"- **Created**: {report.created.isoformat()}",
        f"- **Task**: {report.task}: {_task_line(report)}",
        *_model_lines(report),
        f"- **Data**: `{data.name}` from `{data.source}`, fingerprint `{data.fingerprint[:16]}`; "
        f"train {data.n_train}, validation {data.n_val}, test {data.n_test} rows (split seed {cfg.data.seed})",
        f"- **Served artifact**: `{report.artifacts[report.serving_format]}` ({report.serving_format})",
        "",
        "## Test-split metrics per shipped artifact",
        "",
        "Each row comes from that artifact's own predictions (TFLite through the LiteRT interpreter).",
        "",
        *_metrics_table(report),
        "",
        *_per_class(report, report.served_metrics()),
        *plots.get(report.task, []),
        *training,
        f"Durations: import {d.import_s:.1f} s, {'train' if report.trained else 'load'} {d.train_s:.1f} s, "
        f"export {d.export_s:.1f} s, evaluate {d.evaluate_s:.1f} s.",
        f"Versions: {versions}.",
        "",
        "## Intended use and limits",
        "",
        f"Inputs must be raw values distributed like the training split of `{data.name}` (the report's `reference` "
        "bins); inputs far from them are drift and the scores above do not cover them. The scores are from "
        f"one held-out split of {data.n_test} rows, not a guarantee on other data.",
        "",
    ])


def write(report: TrainingReport, directory: Path, y_test: np.ndarray, served_output: np.ndarray) -> None:
    """The card and its pictures; `served_output` is the served artifact's output on the test split."""
    if report.task != "regression":
        confusion_png(report, directory / CONFUSION_PNG)
    if report.task == "binary":
        roc_png(report, y_test, served_output, directory / ROC_PNG)
    if report.task == "regression":
        scatter_png(report, y_test, served_output, directory / SCATTER_PNG)
    if report.trained:
        curves_png(report, directory / CURVES_PNG)
    (directory / CARD).write_text(markdown(report))
