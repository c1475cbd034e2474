"""Human-readable outputs of a run: the per-class report and the confusion-matrix image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..training.results import HEADLINE, ProtocolResult, RunResult


def class_report_markdown(result: RunResult) -> str:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in result.per_class.items():
        lines.append(
            f"| {name} | {100 * row.precision:.1f} | {100 * row.recall:.1f} | {100 * row.f1:.1f} | {row.support} |"
        )
    test = result.test
    lines.append(
        f"\naccuracy {100 * test.accuracy:.2f} · UAR {100 * test.uar:.2f} · macro-F1 {100 * test.macro_f1:.2f}"
        f" · weighted-F1 {100 * test.weighted_f1:.2f}"
    )
    return "\n".join(lines) + "\n"


def write_class_report(output_dir: Path, result: RunResult) -> None:
    per_class = {k: v.model_dump() for k, v in result.per_class.items()}
    (output_dir / "class_report.json").write_text(json.dumps(per_class, indent=2))
    (output_dir / "class_report.md").write_text(class_report_markdown(result))


def summary_markdown(title: str, summary: ProtocolResult) -> str:
    """Per-fold table with mean ± std of a protocol run."""
    lines = [f"# {title}", "", "| fold | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for name, scores in summary.folds.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * getattr(scores, k):.2f}" for k in HEADLINE) + " |")
    lines.append("| **mean ± std** | " + " | ".join(f"**{summary.headline(k).percent()}**" for k in HEADLINE) + " |")
    if summary.collapsed_speakers:
        lines.append(f"\nTest speakers whose clips all got one label: {', '.join(summary.collapsed_speakers)}")
    return "\n".join(lines) + "\n"


def save_confusion_matrix(matrix: np.ndarray, labels: list[str], path: Path) -> Path:
    """Row-normalised confusion matrix (true class per row) with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    size = 1.2 + 0.65 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{matrix[i, j]}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.5 else "black",
            )
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
