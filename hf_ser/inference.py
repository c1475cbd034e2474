"""Loading a classifier for inference (CLI, Space)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CHECKPOINT = "ser-general"


def bundled_dir() -> Path:
    """The checkpoints shipped inside the package (``hf_ser/checkpoints``), or ``HF_SER_CHECKPOINTS``."""
    return Path(os.environ.get("HF_SER_CHECKPOINTS") or Path(__file__).resolve().parent / "checkpoints")


def bundled_checkpoints() -> dict[str, Path]:
    """Name → folder of every bundled checkpoint (the default first; empty if none)."""
    folder = bundled_dir()
    if not folder.is_dir():
        return {}
    found = sorted(p for p in folder.iterdir() if (p / "config.json").is_file() and not p.name.startswith("."))
    found.sort(key=lambda p: p.name != DEFAULT_CHECKPOINT)
    return {p.name: p for p in found}


def resolve_model(model: str | Path | None) -> Path:
    """A model folder: the given one, or the first bundled checkpoint when ``model`` is None."""
    if model is None:
        bundled = bundled_checkpoints()
        if not bundled:
            raise ValueError(f"no --model given and no bundled checkpoint found in {bundled_dir()}")
        return next(iter(bundled.values()))
    path = Path(model)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    bundled = bundled_checkpoints()
    if str(model) in bundled:
        return bundled[str(model)]
    raise ValueError(f"{model}: not a model folder (expected config.json inside) nor a bundled checkpoint name")


def default_model_path() -> Path:
    """The folder of the default model shipped inside the package."""
    return resolve_model(None)


def load_classifier(model: str | Path | None = None, device: str | int | None = None, adapt_on=None):
    """``pipeline("audio-classification")`` on a model folder or bundled checkpoint name; with no argument, the
    default model shipped in the package (works offline, after a plain ``pip install``). ``adapt_on``: a folder
    (or files) of one speaker's clips, for a speaker-adaptive model (:mod:`hf_ser.adaptation`)."""
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from .models.registry import SERAudioClassificationPipeline

    hf_logging.disable_progress_bar()  # "Loading weights" bars would interleave with command output

    classifier = pipeline(
        "audio-classification",
        model=str(resolve_model(model)),
        device=device,
        pipeline_class=SERAudioClassificationPipeline,
    )
    if adapt_on is not None:
        from .adaptation import adapt_classifier

        adapt_classifier(classifier, adapt_on)
    return classifier
