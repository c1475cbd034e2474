"""RAVDESS (Livingstone & Russo, 2018): ``Actor_XX/03-01-EE-II-SS-RR-AA.wav``, speech part only."""

from __future__ import annotations

from pathlib import Path

from datasets import Value

from .base import Corpus, Excluded, match


class Ravdess(Corpus):
    name = "ravdess"
    emotions = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")  # codes 01..08
    layout = "Actor_01 … Actor_24/03-01-EE-II-SS-RR-AA.wav (any wrapper folder; audio-only speech, modality 03)"
    extra_features = {"intensity": Value("string"), "statement": Value("int32"), "repetition": Value("int32")}

    def parse(self, path: Path) -> dict | Excluded | None:
        m = match(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)", path.stem)
        if m is None:
            return None
        modality, channel, emotion, intensity, statement, repetition, actor = (int(g) for g in m.groups())
        if not (1 <= emotion <= 8 and intensity in (1, 2) and statement in (1, 2) and 1 <= actor <= 24):
            return None
        if modality != 3:
            return Excluded("non-audio modality (video files)")
        if channel != 1:
            return Excluded("song (vocal channel 02)")
        return {
            "emotion": self.emotions[emotion - 1],
            "speaker": f"{actor:02d}",
            "gender": "male" if actor % 2 else "female",
            "intensity": "normal" if intensity == 1 else "strong",
            "statement": statement,
            "repetition": repetition,
        }
