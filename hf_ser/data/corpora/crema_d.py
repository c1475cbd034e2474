"""CREMA-D (Cao et al., 2014): ``AudioWAV/1001_DFA_ANG_XX.wav``; gender from ``VideoDemographics.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

from datasets import Value

from .base import Corpus, CorpusFacts, match

EMOTION_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}


class CremaD(Corpus):
    name = "crema_d"
    emotions = tuple(EMOTION_CODES.values())
    to_unified = {
        "anger": "angry",
        "disgust": "disgust",
        "fear": "fearful",
        "happy": "happy",
        "neutral": "neutral",
        "sad": "sad",
    }
    facts = CorpusFacts(
        title="CREMA-D",
        language="en",
        language_name="American English",
        license="odbl",
        license_text="CREMA-D is released under the Open Database License (ODbL v1.0) with its contents under the "
        "Database Contents License (Cao et al., 2014).",
        description="CREMA-D (91 actors of diverse ages and ethnicities; 12 sentences in 6 emotions).",
        citation="@article{cao2014crema,\n  title   = {CREMA-D: Crowd-sourced emotional multimodal actors dataset},"
        "\n  author  = {Cao, Houwei and Cooper, David G. and Keutmann, Michael K. and Gur, Ruben C. and Nenkova, "
        "Ani and Verma, Ragini},\n  journal = {IEEE Transactions on Affective Computing},\n  volume  = {5},\n"
        "  number  = {4},\n  pages   = {377--390},\n  year    = {2014}\n}",
    )
    layout = "AudioWAV/1001_DFA_ANG_XX.wav (speaker_sentence_emotion_level), optional VideoDemographics.csv beside"
    extra_features = {"sentence": Value("string"), "level": Value("string")}

    example_speakers = ("1001", "1002")

    def example_file(self, emotion: str, speaker: str, index: int) -> str:
        code = next(k for k, v in EMOTION_CODES.items() if v == emotion)
        return f"AudioWAV/{speaker}_{['DFA', 'IEO', 'ITH'][index % 3]}_{code}_XX.wav"

    def prepare(self, root: Path) -> None:
        self.genders: dict[str, str] = {}
        tables = list(root.rglob("VideoDemographics.csv"))
        for table in tables[:1]:
            with open(table, newline="", encoding="utf-8-sig") as handle:
                for row in csv.DictReader(handle):
                    sex = (row.get("Sex") or "").strip().lower()
                    self.genders[(row.get("ActorID") or "").strip()] = sex if sex in ("female", "male") else "unknown"

    def parse(self, path: Path) -> dict | None:
        m = match(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})", path.stem)
        if m is None or m.group(3).upper() not in EMOTION_CODES or m.group(4).upper() not in LEVELS:
            return None
        speaker = m.group(1)
        return {
            "emotion": EMOTION_CODES[m.group(3).upper()],
            "speaker": speaker,
            "gender": self.genders.get(speaker, "unknown"),
            "sentence": m.group(2).upper(),
            "level": LEVELS[m.group(4).upper()],
        }
