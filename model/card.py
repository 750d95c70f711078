"""The model card of a store entry: model_card.md with its confusion-matrix and training-curve pictures."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from model.report import Report  # noqa: E402

CARD = "model_card.md"
CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "training_curves.png"
# No timestamps or versions inside the pictures: the same report draws the same bytes.
_PNG_METADATA = {"Software": None}


def confusion_png(report: Report, path: Path) -> None:
    served = report.served()
    names = report.data.class_names
    n = len(names)
    fig = Figure(figsize=(1.2 + 0.45 * n, 1.0 + 0.45 * n), dpi=100)
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
    ax.set_title(f"{report.serving_format}, test split (n={served.n_samples})")
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_METADATA)


def curves_png(report: Report, path: Path) -> None:
    history = report.training.history
    fig = Figure(figsize=(9, 3.5), dpi=100)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
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


def markdown(report: Report) -> str:
    cfg, data = report.config, report.data
    layers = " -> ".join([f"normalize({data.n_features})"] + [f"Dense {u} {cfg.activation}" for u in cfg.hidden_layers]
                         + [f"Dense {data.n_classes} softmax"])
    rows = [
        f"| {fmt} | {report.artifacts.get(fmt, '')} | {report.sizes.get(fmt, 0):,} | {m.accuracy:.4f} | {m.loss:.4f} | "
        f"{m.precision_macro:.4f} | {m.recall_macro:.4f} | {m.f1_macro:.4f} | {m.min_class_recall:.4f} |"
        for fmt, m in report.metrics.items()
    ]
    served = report.served()
    per_class = [f"| {c.label} | {c.precision:.4f} | {c.recall:.4f} | {c.f1:.4f} | {c.support} | {c.tp} | {c.fp} | {c.fn} | {c.tn} |"
                 for c in served.per_class]
    d = report.durations
    versions = ", ".join(f"{k} {v}" for k, v in sorted(report.versions.items()))
    return "\n".join([
        f"# Model card: `{report.model_id[:12]}`",
        "",
        f"- **Model id**: `{report.model_id}`",
        f"- **Created**: {report.created.isoformat()}",
        f"- **Task**: classify {data.n_features} raw numeric features into {data.n_classes} classes ({', '.join(data.class_names)}); "
        "outputs class probabilities.",
        f"- **Architecture**: {layers}; dropout {cfg.dropout}",
        f"- **Training**: {cfg.optimizer} lr {cfg.learning_rate}, {cfg.epochs} epochs, batch {cfg.batch_size}, seed {cfg.seed}",
        f"- **Data**: `{data.name}` from `{data.source}`, fingerprint `{data.fingerprint[:16]}`; "
        f"train {data.n_train}, validation {data.n_val}, test {data.n_test} rows (split seed {cfg.data.seed})",
        f"- **Served artifact**: `{report.artifacts[report.serving_format]}` ({report.serving_format})",
        "",
        "## Test-split metrics per shipped artifact",
        "",
        "Each row comes from that artifact's own predictions (TFLite through the LiteRT interpreter).",
        "",
        "| format | file | bytes | accuracy | loss | precision (macro) | recall (macro) | F1 (macro) | min class recall |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"## Per class ({report.serving_format})",
        "",
        "| class | precision | recall | F1 | support | TP | FP | FN | TN |",
        "|---|---|---|---|---|---|---|---|---|",
        *per_class,
        "",
        f"![Confusion matrix]({CONFUSION_PNG})",
        "",
        "## Training",
        "",
        f"![Training curves]({CURVES_PNG})",
        "",
        f"Durations: import {d.import_s:.1f} s, train {d.train_s:.1f} s, export {d.export_s:.1f} s, evaluate {d.evaluate_s:.1f} s.",
        f"Versions: {versions}.",
        "",
        "## Intended use and limits",
        "",
        f"Inputs must be raw features distributed like the training split of `{data.name}` (the report's `reference` "
        "statistics); inputs far from them are drift and the scores above do not cover them. The scores are from "
        f"one held-out split of {data.n_test} rows, not a guarantee on other data.",
        "",
    ])


def write(report: Report, directory: Path) -> None:
    confusion_png(report, directory / CONFUSION_PNG)
    curves_png(report, directory / CURVES_PNG)
    (directory / CARD).write_text(markdown(report))
