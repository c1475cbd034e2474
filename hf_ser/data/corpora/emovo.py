"""EMOVO (Costantini et al., 2014): ``f1/dis-f1-b1.wav``; speakers f1–f3 and m1–m3."""

from __future__ import annotations

from pathlib import Path

from datasets import Value

from .base import Corpus, CorpusFacts, match

CODES = {
    "dis": "disgust",
    "gio": "joy",
    "neu": "neutral",
    "pau": "fear",
    "rab": "anger",
    "sor": "surprise",
    "tri": "sadness",
}


class Emovo(Corpus):
    name = "emovo"
    emotions = tuple(CODES.values())
    to_unified = {
        "disgust": "disgust",
        "joy": "happy",
        "neutral": "neutral",
        "fear": "fearful",
        "anger": "angry",
        "surprise": "surprised",
        "sadness": "sad",
    }
    facts = CorpusFacts(
        title="EMOVO",
        language="it",
        language_name="Italian",
        license="other",
        license_text="EMOVO is distributed by its authors for research (Costantini et al., 2014); check its terms.",
        description="EMOVO (6 Italian actors, 3 female, 3 male; 14 sentences in 7 emotions).",
        citation="@inproceedings{costantini2014emovo,\n  title     = {EMOVO corpus: an Italian emotional speech "
        "database},\n  author    = {Costantini, Giovanni and Iaderola, Iacopo and Paoloni, Andrea and Todisco, "
        "Massimiliano},\n  booktitle = {LREC},\n  pages     = {3501--3504},\n  year      = {2014}\n}",
    )
    layout = "f1/dis-f1-b1.wav (emotion dis gio neu pau rab sor tri - speaker f1…m3 - sentence code)"
    extra_features = {"sentence": Value("string")}

    example_speakers = ("f1", "m1")

    def example_file(self, emotion: str, speaker: str, index: int) -> str:
        code = next(k for k, v in CODES.items() if v == emotion)
        return f"{speaker}/{code}-{speaker}-b{index + 1}.wav"

    def parse(self, path: Path) -> dict | None:
        m = match(r"(dis|gio|neu|pau|rab|sor|tri)-([fm][1-3])-([a-z]+\d*)", path.stem)
        if m is None:
            return None
        speaker = m.group(2).lower()
        return {
            "emotion": CODES[m.group(1).lower()],
            "speaker": speaker,
            "gender": "female" if speaker[0] == "f" else "male",
            "sentence": m.group(3).lower(),
        }
