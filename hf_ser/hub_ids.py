"""Whether a string names a Hub repo: the one test, shared by model resolution (:mod:`hf_ser.inference`) and
the cards' ``base_model`` (:mod:`hf_ser.encoders.whisper`), which sit on either side of the model loaders."""

from __future__ import annotations

from pathlib import Path


def looks_like_hub_id(text: str) -> bool:
    """``owner/name`` that is not an existing local path (a folder named like a repo is read as the folder), nor
    a relative path such as ``./model``."""
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith(".") and not Path(text).exists()
