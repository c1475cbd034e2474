"""ASED v1, the Amharic Speech Emotion Dataset (Retta et al., 2022): ``01Neutral/n1-01-01-01-01.ogg``.

File names are ``xn-yy-aa-gg-bb``: emotion letter and folder number (n1 neutral, f2 fearful, h3 happy, s4 sad,
a5 angry), sentence (01-07), repetition, gender (01 female, 02 male) and speaker (01-65). 65 speakers, 2,474 clips
kept only where at least five of eight judges agreed with the label. Five of the seven sentences were each spoken
in one emotion only (the sentence gives the emotion away within a speaker); two common sentences in all five.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Value

from .base import Corpus, CorpusFacts, match

CODES = {"n1": "neutral", "f2": "fearful", "h3": "happy", "s4": "sad", "a5": "angry"}
FOLDERS = {"neutral": "01Neutral", "fearful": "02Fearful", "happy": "03Happy", "sad": "04Sad", "angry": "05Angry"}


class Ased(Corpus):
    name = "ased"
    emotions = tuple(CODES.values())
    to_unified = {e: e for e in CODES.values()}
    facts = CorpusFacts(
        title="ASED",
        language="am",
        language_name="Amharic",
        license="other",
        license_text="ASED v1 states no licence (Ethio2021/ASED_V1 on GitHub); cite Retta et al., ACM TALLIP 2022, "
        "and check with its authors before any redistribution.",
        description="ASED v1 (65 Amharic speakers, 25 female and 40 male; 7 sentences in 5 emotions, 2,474 clips "
        "that at least five of eight judges agreed on).",
        citation="@article{retta2022ased,\n  title   = {A New Amharic Speech Emotion Dataset and Classification "
        "Benchmark},\n  author  = {Retta, Ephrem Afele and Almekhlafi, Eiad and Sutcliffe, Richard and Mhamed, "
        "Mustafa and Ali, Haider and Feng, Jun},\n  journal = {ACM Transactions on Asian and Low-Resource Language "
        "Information Processing},\n  year    = {2022},\n  doi     = {10.1145/3529759}\n}",
    )
    layout = "01Neutral/n1-01-01-01-01.ogg (emotion n1 f2 h3 s4 a5 - sentence - repetition - gender - speaker)"
    extra_features = {"sentence": Value("string")}

    example_speakers = ("01", "02")

    def example_file(self, emotion: str, speaker: str, index: int) -> str:
        code = next(k for k, v in CODES.items() if v == emotion)
        gender = "01" if speaker == "01" else "02"
        return f"{FOLDERS[emotion]}/{code}-{index % 7 + 1:02d}-{index // 7 + 1:02d}-{gender}-{speaker}.wav"

    def parse(self, path: Path) -> dict | None:
        m = match(r"([nfhsa][1-5])-(\d{2})-(\d{2})-(0[12])-(\d{2})", path.stem)
        if m is None or m.group(1).lower() not in CODES:
            return None
        return {
            "emotion": CODES[m.group(1).lower()],  # one file is named "S4-…": the case is ignored
            "speaker": m.group(5),
            "gender": "female" if m.group(4) == "01" else "male",
            "sentence": m.group(2),
        }
