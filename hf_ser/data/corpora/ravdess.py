"""RAVDESS (Livingstone & Russo, 2018): ``Actor_XX/03-01-EE-II-SS-RR-AA.wav``, speech part only."""

from __future__ import annotations

from pathlib import Path

from datasets import Value

from .base import Corpus, CorpusFacts, Excluded, match


class Ravdess(Corpus):
    name = "ravdess"
    emotions = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")  # codes 01..08
    to_unified = dict(zip(emotions, emotions))
    facts = CorpusFacts(
        title="RAVDESS",
        language="en",
        language_name="North American English",
        license="cc-by-nc-sa-4.0",
        license_text="RAVDESS is CC BY-NC-SA 4.0 (Livingstone & Russo, 2018). A model trained on it inherits the "
        "non-commercial, share-alike terms: such a model is CC BY-NC-SA 4.0 too and may not be used commercially.",
        description="the speech part of RAVDESS (24 professional actors, 12 female, 12 male; two neutral "
        "statements spoken in 8 emotions, normal and strong intensity).",
        citation="@article{livingstone2018ravdess,\n  title   = {The Ryerson Audio-Visual Database of "
        "Emotional Speech and Song (RAVDESS)},\n  author  = {Livingstone, Steven R. and Russo, Frank A.},\n"
        "  journal = {PLoS ONE},\n  volume  = {13},\n  number  = {5},\n  pages   = {e0196391},\n  year    = {2018}\n}",
    )
    layout = "Actor_01 … Actor_24/03-01-EE-II-SS-RR-AA.wav (any wrapper folder; audio-only speech, modality 03)"
    extra_features = {"intensity": Value("string"), "statement": Value("int32"), "repetition": Value("int32")}

    example_speakers = ("01", "02")

    def example_file(self, emotion: str, speaker: str, index: int) -> str:
        code = self.emotions.index(emotion) + 1
        return f"Actor_{speaker}/03-01-{code:02d}-01-01-{index % 2 + 1:02d}-{speaker}.wav"

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
