"""SAVEE (Jackson & Haq, 2014): ``AudioData/DC/a01.wav`` or the flat ``ALL/DC_a01.wav``; four male speakers."""

from __future__ import annotations

from pathlib import Path

from .base import Corpus, CorpusFacts, match

CODES = {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness", "su": "surprise"}
SPEAKERS = ("DC", "JE", "JK", "KL")


class Savee(Corpus):
    name = "savee"
    emotions = tuple(CODES.values())
    to_unified = {
        "anger": "angry",
        "disgust": "disgust",
        "fear": "fearful",
        "happiness": "happy",
        "neutral": "neutral",
        "sadness": "sad",
        "surprise": "surprised",
    }
    facts = CorpusFacts(
        title="SAVEE",
        language="en",
        language_name="British English",
        license="other",
        license_text="SAVEE is free for research use (University of Surrey); check its terms before other use.",
        description="SAVEE (4 male British English speakers, 480 utterances in 7 emotions).",
        citation="@inproceedings{jackson2014savee,\n  title     = {Surrey Audio-Visual Expressed Emotion (SAVEE) "
        "database},\n  author    = {Jackson, Philip and Haq, Sanaul},\n  publisher = {University of Surrey},\n"
        "  year      = {2014}\n}",
    )
    layout = "AudioData/DC/a01.wav (speaker folders DC JE JK KL; codes a d f h n sa su) or ALL/DC_a01.wav"

    example_speakers = ("DC", "JE")

    def example_file(self, emotion: str, speaker: str, index: int) -> str:
        code = next(k for k, v in CODES.items() if v == emotion)
        return f"AudioData/{speaker}/{code}{index + 1:02d}.wav"

    def parse(self, path: Path) -> dict | None:
        m = match(r"(?:(DC|JE|JK|KL)_)?(sa|su|a|d|f|h|n)(\d\d)", path.stem)
        if m is None:
            return None
        speaker = (m.group(1) or path.parent.name).upper()
        if speaker not in SPEAKERS:
            return None
        return {"emotion": CODES[m.group(2).lower()], "speaker": speaker, "gender": "male"}
