"""Audio for hf-ser's data layer and CLI: the remote-code waveform functions, plus decoding dataset rows.

The decode / resample / down-mix / validate functions live in :mod:`hf_ser.models.ser.audio_ser` (they travel
with every saved model, for its pipeline); this module re-exports them for the rest of the package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .models.ser.audio_ser import (
    AudioDecodeError,
    AudioSource,
    check_samples,
    check_waveform,
    load_audio,
    resample,
    to_mono,
    url_refusal,
)

__all__ = [
    "AudioDecodeError",
    "AudioSource",
    "check_samples",
    "check_waveform",
    "decode_row",
    "header_seconds",
    "load_audio",
    "resample",
    "to_mono",
    "url_refusal",
]


def decode_row(audio_path: str | None, array, rate: int | None, target_rate: int) -> np.ndarray:
    """A dataset row's waveform at ``target_rate``: its stored ``array`` if it has one, else the decoded file."""
    if array is not None:
        wave = check_waveform(np.asarray(array, dtype=np.float32), str(audio_path))
        return resample(wave, int(rate), target_rate)
    wave, _ = load_audio(audio_path, target_rate)
    return wave


def header_seconds(path: str | Path) -> float | None:
    """A file's length in seconds as its header gives it (``soundfile.info``), without decoding it; None where
    libsndfile cannot tell (an unreadable file: decoding it then says why). Lets a length limit refuse a long
    recording before decoding: a 1-hour 48 kHz stereo upload held 5.2 GB at its peak to be told it was too long."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # soundfile raises LibsndfileError, RuntimeError, TypeError…: the decoder will name it
        return None
    if info.samplerate <= 0 or info.frames <= 0:
        return None
    return info.frames / info.samplerate
