"""One input policy for every way audio reaches a model (pipeline, batch runs, the timeline, the demo).

It owns what a user's audio must be: which file suffixes a folder walk picks up, the shortest clip a model is
given, the window and hop of long recordings, the longest upload, and whether a clip holds speech at all.

**Speech is what the VAD finds**, a level-independent decision: the clip is peak-normalised before Silero VAD
looks at it, so a quiet recording (a phone across the room) is still speech and loud noise is still not. Only
digital silence (peak below :attr:`InputPolicy.digital_silence`) is decided without the VAD.

Silero VAD's ONNX model (shipped inside the ``silero-vad`` wheel) is run here with onnxruntime and numpy, so
batch runs on the ONNX backend import no torch: the package's own ``OnnxWrapper`` needs torch tensors. Without
onnxruntime, the package's torch model is used (same network).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

NO_SPEECH = "no speech"
VAD_RATE = 16000
VAD_CHUNK = 512  # samples per Silero VAD step at 16 kHz
VAD_CONTEXT = 64  # samples of the previous chunk Silero's ONNX model reads with each chunk


@cache
def _onnx_session():
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = options.intra_op_num_threads = 1
    spec = importlib.util.find_spec("silero_vad")  # located, not imported: its __init__ imports torch
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@cache
def _torch_model():
    from silero_vad import load_silero_vad

    return load_silero_vad()


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def speech_probabilities(wave: np.ndarray) -> np.ndarray:
    """Silero VAD's speech probability per 32 ms chunk of a 16 kHz mono clip (the last chunk zero-padded)."""
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) % VAD_CHUNK:
        wave = np.pad(wave, (0, VAD_CHUNK - len(wave) % VAD_CHUNK))
    chunks = wave.reshape(-1, VAD_CHUNK)
    if "torch" in sys.modules or not _onnxruntime_available():
        import torch

        model = _torch_model()
        model.reset_states()
        with torch.inference_mode():
            return np.array([float(model(torch.from_numpy(c.copy()), VAD_RATE)) for c in chunks], dtype=np.float32)
    session = _onnx_session()
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros(VAD_CONTEXT, dtype=np.float32)
    rate = np.array(VAD_RATE, dtype=np.int64)
    out = np.empty(len(chunks), dtype=np.float32)
    for i, chunk in enumerate(chunks):
        x = np.concatenate([context, chunk])[None]
        prob, state = session.run(None, {"input": x, "state": state, "sr": rate})
        out[i] = float(np.asarray(prob).ravel()[0])
        context = chunk[-VAD_CONTEXT:]
    return out


@dataclass(frozen=True)
class SpeechFound:
    """What the VAD found in a clip: the seconds of its chunks at or above the speech threshold, and the highest
    speech probability of any chunk (the evidence :meth:`InputPolicy.has_speech` also weighs)."""

    seconds: float
    peak_probability: float


def seconds_down(seconds: float, decimals: int = 2) -> str:
    """Seconds rounded down to ``decimals``: a length just under a minimum must not read as the minimum itself
    (0.9998 s read "too short (1.00 s; under 1 s ...)", 0.2499 s "0.250 s long; at least 0.25 s"). Rounded to 6
    places first, since 0.29 * 100 is 28.999..."""
    scale = 10**decimals
    return f"{math.floor(round(seconds * scale, 6)) / scale:.{decimals}f}"


@dataclass(frozen=True)
class InputPolicy:
    """What audio hf-ser accepts and how it is cut; :data:`DEFAULT_POLICY` is used everywhere.

    Attributes:
        audio_suffixes: file suffixes a folder walk picks up (anything libsndfile reads).
        companion_files: names a folder walk leaves without logging them (datasets' audiofolder metadata).
        min_seconds: shorter clips carry too little prosody to classify; they get an error.
        max_upload_seconds: the longest recording the demo accepts.
        window_seconds, hop_seconds: long recordings are scored in windows of this length and hop.
        vad_threshold: Silero VAD's speech probability above which a 32 ms chunk is speech.
        min_speech_seconds: a clip holds speech when at least this much of it is speech chunks.
        speech_evidence: ... or when any chunk's speech probability reaches this: Silero misses some real emotional
            speech (108 of 3,914 RAVDESS and ASED clips had under 0.1 s of speech chunks: 96 ASED clips, 83 of them
            sad, and 12 shouted RAVDESS ones), yet 95 of those reach 0.2 somewhere, while white, pink and brown
            noise, 50 Hz hum, a buzz, tones, clicks and fan noise stay at or below 0.05 (bench/bench_vad.py). Such a
            clip is classified and answered "uncertain" (too little speech) with its scores, not "no speech".
        digital_silence: peak amplitude below which a clip is silence without asking the VAD.
        long_recording_seconds: a file longer than this that is answered in one piece (``hf-ser predict`` without
            ``--segments``) gets a note that its one label covers all of it. Length alone does not hurt: on the
            defaults' validation speakers, 15-120 s joined from clips of one emotion were right 79-86 % of the time
            (whole clips 76-79 %), but joined from several emotions they still got a label 60-100 % of the time at a
            mean top score of 0.54-0.60, where a timeline shows the change (``bench/bench_long.py``). The corpora's
            clips are 1-10 s long; 15 s is the shortest length measured.
    """

    audio_suffixes: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf", ".opus"}
        )
    )
    companion_files: frozenset[str] = frozenset({"metadata.csv", "metadata.jsonl"})
    min_seconds: float = 0.25
    max_upload_seconds: float = 600.0
    window_seconds: float = 4.0
    hop_seconds: float = 2.0
    vad_threshold: float = 0.5
    min_speech_seconds: float = 0.1
    speech_evidence: float = 0.2
    digital_silence: float = 1e-5
    long_recording_seconds: float = 15.0

    def vad_input(self, wave: np.ndarray, peak: float | None = None) -> np.ndarray:
        """Audio as the VAD hears it: peak-normalised (the level-independent decision), digital silence as zeros.
        ``peak``: the whole recording's, where ``wave`` is one block of a streamed file (the timeline); each block
        normalised to its own peak brought a last block of faint room tone up to full scale, where the VAD heard
        "speech" at 0.34."""
        if peak is None:
            peak = float(np.max(np.abs(wave))) if wave.size else 0.0
        return wave * (0.9 / peak) if peak >= self.digital_silence else np.zeros_like(wave)

    def speech(self, wave: np.ndarray, rate: int) -> SpeechFound:
        """What Silero VAD finds in the peak-normalised clip (nothing for digital silence)."""
        wave = self.vad_input(np.asarray(wave, dtype=np.float32))
        if not wave.any():
            return SpeechFound(0.0, 0.0)
        if rate != VAD_RATE:
            import soxr

            wave = soxr.resample(wave, rate, VAD_RATE)
        probabilities = speech_probabilities(wave)
        seconds = float((probabilities >= self.vad_threshold).sum() * VAD_CHUNK / VAD_RATE)
        return SpeechFound(seconds, float(probabilities.max()))

    def speech_seconds(self, wave: np.ndarray, rate: int) -> float:
        """Seconds of speech Silero VAD finds in the peak-normalised clip (0 for digital silence)."""
        return self.speech(wave, rate).seconds

    def has_speech(self, found: SpeechFound) -> bool:
        """Whether a clip holds speech, from what :meth:`speech` found: enough speech chunks, or a chunk whose
        speech probability reaches ``speech_evidence`` (callers keep ``found.seconds``: the "uncertain" rule holds
        it to its own, higher minimum, so such a clip is answered "uncertain")."""
        return found.seconds >= self.min_speech_seconds or found.peak_probability >= self.speech_evidence

    def too_short(self, seconds: float) -> str | None:
        """The error text for a clip shorter than :attr:`min_seconds`, else None."""
        if seconds < self.min_seconds:
            return f"clip is {seconds_down(seconds, 3)} s long; at least {self.min_seconds} s are needed"
        return None

    def too_long(self, seconds: float, longest: float | None) -> str | None:
        """The error text for a clip longer than a model takes in one piece (``longest`` seconds; None: any
        length), else None. Such a recording is classified over time instead (``--segments``)."""
        if longest is not None and seconds > longest:
            return (
                f"clip is {seconds:.1f} s long; this model takes at most {longest:g} s in one piece: classify it "
                "over time (hf-ser predict --segments, or hf_ser.segments)"
            )
        return None


DEFAULT_POLICY = InputPolicy()
