"""Tiny synthetic corpora with the real file-naming conventions, generated into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 8000


def tone(seed: int, seconds: float = 0.25, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * (seed % 7)
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def write(path: Path, seed: int, rate: int = RATE, seconds: float = 0.25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seed, seconds, rate), rate)
    return path


def class_tone(emotion: int, seed: int, seconds: float = 0.5, rate: int = RATE) -> np.ndarray:
    """A learnable clip: pitch and brightness depend on the class, loudness and noise on the seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 * 2 ** (emotion / 3) * (1 + 0.02 * rng.standard_normal())
    wave = sum(np.sin(2 * np.pi * h * f0 * t) / h ** (0.5 + emotion % 3) for h in range(1, 6))
    return (rng.uniform(0.1, 0.4) * wave / 3 + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def make_ravdess(root: Path, actors=range(1, 7), ext: str = "wav", learnable: bool = False) -> Path:
    """Per actor: 8 emotions (neutral normal only) + 1 song file + 1 video-only file.

    ``learnable=True`` makes each class sound different (see :func:`class_tone`), for training tests.
    """
    seed = 0
    for actor in actors:
        folder = root / "Audio_Speech_Actors_01-24" / f"Actor_{actor:02d}"
        for emotion in range(1, 9):
            for intensity in [1] if emotion == 1 else [1, 2]:
                seed += 1
                path = folder / f"03-01-{emotion:02d}-{intensity:02d}-01-01-{actor:02d}.{ext}"
                if learnable:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(path, class_tone(emotion, seed), RATE)
                else:
                    write(path, seed)
        write(folder / f"03-02-03-01-01-01-{actor:02d}.{ext}", 999)  # song
        write(folder / f"02-01-03-01-01-01-{actor:02d}.{ext}", 998)  # video-only
    return root


def make_crema_d(root: Path, demographics: bool = True) -> Path:
    speakers = {"1001": "Male", "1002": "Female", "1003": "Female", "1004": "Male"}
    seed = 0
    for speaker in speakers:
        for emotion, level in [
            ("ANG", "HI"),
            ("DIS", "XX"),
            ("FEA", "LO"),
            ("HAP", "MD"),
            ("NEU", "XX"),
            ("SAD", "XX"),
        ]:
            seed += 1
            write(root / "AudioWAV" / f"{speaker}_DFA_{emotion}_{level}.wav", seed)
    if demographics:
        lines = ["ActorID,Age,Sex,Race,Ethnicity"] + [f"{s},30,{g},Caucasian,Not Hispanic" for s, g in speakers.items()]
        (root / "VideoDemographics.csv").write_text("\n".join(lines) + "\n")
    return root


def make_tess(root: Path, kaggle_wrapper: bool = True) -> Path:
    base = root / "TESS Toronto emotional speech set data" if kaggle_wrapper else root
    seed = 0
    for speaker in ("OAF", "YAF"):
        for folder_emotion, file_emotion in [
            ("angry", "angry"),
            ("disgust", "disgust"),
            ("Fear", "fear"),
            ("happy", "happy"),
            ("neutral", "neutral"),
            ("pleasant_surprised", "ps"),
            ("Sad", "sad"),
        ]:
            for word in ("back", "bar"):
                seed += 1
                write(base / f"{speaker}_{folder_emotion}" / f"{speaker}_{word}_{file_emotion}.wav", seed)
    return root


def make_savee(root: Path, flat: bool = False) -> Path:
    seed = 0
    for speaker in ("DC", "JE", "JK", "KL"):
        for code in ("a", "d", "f", "h", "n", "sa", "su"):
            for n in (1, 2):
                seed += 1
                name = f"{code}{n:02d}.wav"
                write(root / "ALL" / f"{speaker}_{name}" if flat else root / "AudioData" / speaker / name, seed)
    return root


def make_emodb(root: Path, rate: int = RATE) -> Path:
    seed = 0
    for speaker in ("03", "08", "09", "10"):
        for letter in "WLEAFTN":
            seed += 1
            write(root / "wav" / f"{speaker}a01{letter}a.wav", seed, rate=rate)
    return root


def make_emovo(root: Path) -> Path:
    seed = 0
    for speaker in ("f1", "f2", "m1", "m2"):
        for code in ("dis", "gio", "neu", "pau", "rab", "sor", "tri"):
            seed += 1
            write(root / speaker / f"{code}-{speaker}-b1.wav", seed)
    return root


MAKERS = {
    "ravdess": make_ravdess,
    "crema_d": make_crema_d,
    "tess": make_tess,
    "savee": make_savee,
    "emodb": make_emodb,
    "emovo": make_emovo,
}
