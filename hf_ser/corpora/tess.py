"""TESS (Toronto emotional speech set): ``OAF_angry/OAF_back_angry.wav``; two female speakers."""

from __future__ import annotations

from pathlib import Path

from datasets import Value

from .base import Corpus, match

EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "pleasant_surprise",
    "pleasant_surprise": "pleasant_surprise",
    "pleasant_surprised": "pleasant_surprise",
    "sad": "sad",
}


class Tess(Corpus):
    name = "tess"
    emotions = ("angry", "disgust", "fear", "happy", "neutral", "pleasant_surprise", "sad")
    layout = "OAF_angry/OAF_back_angry.wav, YAF_pleasant_surprised/YAF_back_ps.wav (also inside the Kaggle wrapper)"
    extra_features = {"word": Value("string")}

    def parse(self, path: Path) -> dict | None:
        m = match(r"(OAF|YAF)_([a-z]+)_([a-z_]+)", path.stem)
        if m is None or m.group(3).lower() not in EMOTIONS:
            return None
        return {
            "emotion": EMOTIONS[m.group(3).lower()],
            "speaker": m.group(1).upper(),
            "gender": "female",
            "word": m.group(2).lower(),
        }
