"""Loading a classifier for inference (CLI, Space)."""

from __future__ import annotations

from pathlib import Path

from transformers import pipeline

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


def bundled_checkpoints() -> dict[str, Path]:
    """Name → folder of every checkpoint bundled in ``checkpoints/`` (empty if none)."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / "config.json").is_file()}


def resolve_model(model: str | Path | None) -> Path:
    """A model folder: the given one, or the first bundled checkpoint when ``model`` is None."""
    if model is None:
        bundled = bundled_checkpoints()
        if not bundled:
            raise ValueError("no --model given and no bundled checkpoint found in checkpoints/")
        return next(iter(bundled.values()))
    path = Path(model)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    bundled = bundled_checkpoints()
    if str(model) in bundled:
        return bundled[str(model)]
    raise ValueError(f"{model}: not a model folder (expected config.json inside) nor a bundled checkpoint name")


def load_classifier(model: str | Path | None = None, device: str | int | None = None):
    """``pipeline("audio-classification")`` on a model folder or bundled checkpoint name."""
    import hf_ser  # noqa: F401  (registers the classes and the soundfile/soxr pipeline)

    return pipeline("audio-classification", model=str(resolve_model(model)), device=device)
