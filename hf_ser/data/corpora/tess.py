"""TESS (Toronto emotional speech set): ``OAF_angry/OAF_back_angry.wav``; two female speakers."""

from __future__ import annotations

from pathlib import Path

from datasets import Value

from .base import Corpus, CorpusFacts, match

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
    to_unified = {
        "angry": "angry",
        "disgust": "disgust",
        "fear": "fearful",
        "happy": "happy",
        "neutral": "neutral",
        "pleasant_surprise": "surprised",
        "sad": "sad",
    }
    facts = CorpusFacts(
        title="TESS",
        language="en",
        language_name="Canadian English",
        license="cc-by-nc-nd-4.0",
        license_text="TESS is CC BY-NC-ND 4.0 (Dupuis & Pichora-Fuller, University of Toronto, 2010): a model "
        "trained on it may not be used commercially.",
        description="the Toronto emotional speech set (2 female speakers aged 26 and 64; 200 target words in "
        "the carrier phrase 'Say the word ...', 7 emotions).",
        citation="@misc{dupuis2010tess,\n  title  = {Toronto emotional speech set (TESS)},\n  author = {Dupuis, "
        "Kate and Pichora-Fuller, M. Kathleen},\n  publisher = {University of Toronto, Psychology Department},\n"
        "  year   = {2010},\n  doi    = {10.5683/SP2/E8H2MF}\n}",
    )
    layout = "OAF_angry/OAF_back_angry.wav, YAF_pleasant_surprised/YAF_back_ps.wav (also inside the Kaggle wrapper)"
    extra_features = {"word": Value("string")}

    example_speakers = ("OAF", "YAF")

    def example_file(self, emotion: str, speaker: str, index: int) -> str:
        code = "ps" if emotion == "pleasant_surprise" else emotion
        return f"{speaker}_{emotion}/{speaker}_word{chr(97 + index % 26)}_{code}.wav"

    def parse(self, path: Path) -> dict | None:
        # The common Kaggle copy names one file OAF_neutral/OA_bite_neutral.wav: it is OAF's.
        m = match(r"(OAF|YAF|OA)_([a-z]+)_([a-z_]+)", path.stem)
        if m is None or m.group(3).lower() not in EMOTIONS:
            return None
        return {
            "emotion": EMOTIONS[m.group(3).lower()],
            "speaker": "OAF" if m.group(1).upper() == "OA" else m.group(1).upper(),
            "gender": "female",
            "word": m.group(2).lower(),
        }
