"""Berlin EMO-DB (Burkhardt et al., 2005): ``wav/03a01Fa.wav`` = speaker, text, emotion letter, version."""

from __future__ import annotations

from pathlib import Path

from datasets import Value

from .base import Corpus, CorpusFacts, match

LETTERS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral"}
SPEAKER_GENDER = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}


class EmoDB(Corpus):
    name = "emodb"
    emotions = tuple(LETTERS.values())
    to_unified = {
        "anger": "angry",
        "boredom": "boredom",
        "disgust": "disgust",
        "fear": "fearful",
        "happiness": "happy",
        "sadness": "sad",
        "neutral": "neutral",
    }
    facts = CorpusFacts(
        title="EMO-DB",
        language="de",
        language_name="German",
        license="other",
        license_text="Berlin EMO-DB is distributed by its authors for research (Burkhardt et al., 2005); check "
        "its terms before any use beyond research. A model trained on it is for research use only.",
        description="the Berlin Database of Emotional Speech (10 actors, 5 female, 5 male; 10 German sentences "
        "in 7 emotions, full-length recordings of 1.2 to 9 s).",
        citation="@inproceedings{burkhardt2005emodb,\n  title     = {A database of German emotional speech},\n"
        "  author    = {Burkhardt, Felix and Paeschke, Astrid and Rolfes, Miriam and Sendlmeier, Walter F. and "
        "Weiss, Benjamin},\n  booktitle = {Interspeech},\n  pages     = {1517--1520},\n  year      = {2005}\n}",
    )
    layout = "wav/03a01Fa.wav (speaker 03…16, text code a01…b10, emotion W L E A F T N, version letter)"
    extra_features = {"text": Value("string")}

    example_speakers = ("03", "08")

    def example_file(self, emotion: str, speaker: str, index: int) -> str:
        letter = next(k for k, v in LETTERS.items() if v == emotion)
        return f"wav/{speaker}a{index % 10 + 1:02d}{letter}a.wav"

    def parse(self, path: Path) -> dict | None:
        m = match(r"(\d\d)([ab]\d\d)([WLEAFTN])([a-z])", path.stem)
        if m is None or m.group(1) not in SPEAKER_GENDER or not m.group(3).isupper():
            return None
        return {
            "emotion": LETTERS[m.group(3)],
            "speaker": m.group(1),
            "gender": SPEAKER_GENDER[m.group(1)],
            "text": m.group(2),
        }
