"""Audio I/O without torchaudio or ffmpeg: decode with soundfile, resample with soxr, down-mix, validate.

Part of the remote code (copied into every saved model folder with the pipeline), so it imports only
numpy, soundfile and soxr; soundfile and soxr are imported when first needed, so that a user without
them still loads the model (the pipeline then falls back to transformers' own decoding).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AudioSource = str | os.PathLike | bytes

MAX_FLOAT_PEAK = 4.0
"""Largest sample magnitude accepted (12 dB beyond full scale, ±1.0). Float audio may pass full scale a little (a hot
master, a filter's overshoot), but integer PCM stored as float without scaling (``int16_array.astype(float)``)
peaks in the hundreds or thousands; the Whisper family's log-mel keeps the level, and on ser-whisper-general's
validation clips scaled by 32768 its answers agreed with the clip's on 15.7 % (accuracy 78.9 -> 20.0 %), with
nothing marking them uncertain."""


class AudioDecodeError(ValueError):
    """A file or byte string that soundfile cannot decode, or that holds no usable audio."""

    @classmethod
    def cannot_decode(cls, name: str, err: Exception) -> AudioDecodeError:
        """``name: cannot decode audio (reason)``, with libsndfile's reason alone: its message repeats the path
        ("Error opening '/x/a.wav': ...") or names an object ("Error opening <_io.BytesIO object at 0x7f..>")."""
        return cls(f"{name}: cannot decode audio ({getattr(err, 'error_string', None) or err})")


CANCELLED_MIX_DB = 20.0
"""How far (dB) the channels' average may fall below its loudest channel before it counts as cancelled."""


def to_mono(array: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) array; 1-D input is returned as is. Where the average
    cancels (more than ``CANCELLED_MIX_DB`` below the loudest channel: a channel wired in opposite polarity, which
    makes the average of a mono source silence), the loudest channel instead: a stereo file of speech in one channel
    and the same speech inverted in the other had been answered "no speech"."""
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise ValueError(f"expected audio of shape (samples,) or (samples, channels), got {array.shape}")
    mix = array.mean(axis=1, dtype=np.float32)
    if array.shape[1] > 1 and len(array):
        power = np.mean(np.square(array, dtype=np.float64), axis=0)
        loudest = int(np.argmax(power))
        if power[loudest] > 1e-10 and np.mean(np.square(mix, dtype=np.float64)) < power[loudest] * 10 ** (
            -CANCELLED_MIX_DB / 10
        ):
            return np.ascontiguousarray(array[:, loudest], dtype=np.float32)
    return mix


def as_float32(array) -> np.ndarray:
    """Samples as float32 in [-1, 1): integer PCM scaled as soundfile reads it (int16 / 32768; unsigned 8-bit, which
    is offset binary, centred on 128 first), floats unchanged. Without this an int16 array reaches the features 32768
    times too loud, which the Whisper family (whose log-mel keeps the level) answers differently."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.unsignedinteger):
        middle = (float(np.iinfo(array.dtype).max) + 1.0) / 2.0
        return ((array.astype(np.float64) - middle) / middle).astype(np.float32)
    if np.issubdtype(array.dtype, np.signedinteger):
        return (array.astype(np.float64) / -float(np.iinfo(array.dtype).min)).astype(np.float32)
    return array.astype(np.float32, copy=False)


def user_array_to_mono(array: np.ndarray, source: str = "audio") -> np.ndarray:
    """Down-mix an array a user passed: (samples, channels) as soundfile returns it, or (channels, samples) as
    torchaudio and librosa do; the channel axis is the shorter one (a clip has more samples than channels)."""
    if array.ndim == 2 and array.shape[0] < array.shape[1]:
        array = array.T
    if array.ndim > 2:
        raise ValueError(f"{source}: expected audio of shape (samples,) or (samples, channels), got {array.shape}")
    return to_mono(array)


def resample(array: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float waveform with soxr (high quality); a no-op when the rates match."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sampling rates must be positive, got {orig_sr} -> {target_sr}")
    array = np.asarray(array, dtype=np.float32)
    if orig_sr == target_sr:
        return array
    import soxr

    return soxr.resample(array, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def check_samples(array: np.ndarray, source: str = "audio") -> np.ndarray:
    """Raise an error naming ``source`` for non-finite samples or samples far beyond full scale
    (``MAX_FLOAT_PEAK``); return the array unchanged. Also for a block of a streamed file (which may be empty)."""
    if not np.isfinite(array).all():
        raise AudioDecodeError(f"{source}: contains non-finite samples (NaN or inf)")
    peak = float(np.abs(array).max(initial=0.0))
    if peak > MAX_FLOAT_PEAK:
        raise AudioDecodeError(
            f"{source}: samples reach {peak:.6g}, but float audio lies within ±1.0 (full scale; at most "
            f"{MAX_FLOAT_PEAK:g} accepted): integer PCM stored as float? Divide 16-bit values by 32768 (or pass the "
            "integer array itself, which hf-ser scales)"
        )
    return array


def check_waveform(array: np.ndarray, source: str = "audio") -> np.ndarray:
    """Raise an error naming ``source`` for empty audio or what :func:`check_samples` refuses; return the array
    unchanged."""
    if array.size == 0:
        raise AudioDecodeError(f"{source}: zero-length audio")
    return check_samples(array, source)


def url_refusal(text: str) -> str | None:
    """Why a URL (``https://``, ``s3://``, ``gs://``, …) given as a path is refused; None for a path. hf-ser reads
    local files only: a bucket has to be downloaded or mounted (e.g. s3fs, gcsfuse)."""
    scheme, sep, rest = text.partition("://")
    if not sep or not rest or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return None
    return (
        "a URL; hf-ser reads local files only: download it, or mount the bucket (e.g. s3fs, gcsfuse), and pass its path"
    )


def decode_input(inputs, sampling_rate: int, name: str = "the audio array"):
    """A mono float32 waveform at ``sampling_rate`` from a file path, raw file bytes, a dict
    ``{"array" | "raw": ..., "sampling_rate": int}`` or a row of a datasets ``Audio(decode=False)`` column
    (``{"bytes": ..., "path": ...}``: the bytes when present, else the file); an array (numpy or torch, at the
    extractor's rate) that holds integer PCM or two dimensions is scaled and down-mixed (:func:`as_float32`,
    :func:`user_array_to_mono`); any other input is returned unchanged. Errors about an array call it ``name``."""
    if isinstance(inputs, str) and (refused := url_refusal(inputs)):
        raise ValueError(f"{inputs}: {refused}")
    if isinstance(inputs, (str, bytes, bytearray)) or hasattr(inputs, "__fspath__"):
        return load_audio(inputs, sampling_rate)[0]
    if isinstance(inputs, dict) and ("bytes" in inputs or "path" in inputs) and "sampling_rate" not in inputs:
        # a row of a datasets Audio column read undecoded (Audio(decode=False)): the file's bytes, or its path
        data, path = inputs.get("bytes"), inputs.get("path")
        if data is None and path is None:
            raise ValueError('a datasets audio dict needs "bytes" or "path", both were None')
        try:
            return load_audio(path if data is None else data, sampling_rate)[0]
        except AudioDecodeError as err:  # name the row's file, not "<bytes>"
            raise AudioDecodeError(str(err).replace("<bytes>", f"<bytes of {path}>") if path else str(err)) from err
    if isinstance(inputs, dict):
        if "sampling_rate" not in inputs or not ("raw" in inputs or "array" in inputs):
            raise ValueError(
                'a dict input needs "sampling_rate" and "raw" or "array" keys (or "bytes"/"path", as a datasets '
                f"Audio(decode=False) row holds), got {sorted(inputs)}"
            )
        array = inputs.get("raw", inputs.get("array"))
        if hasattr(array, "detach"):
            array = array.detach().cpu().numpy()
        mono = check_waveform(user_array_to_mono(as_float32(array), "the dict's audio array"), "the dict's audio array")
        return resample(mono, int(inputs["sampling_rate"]), sampling_rate)
    if hasattr(inputs, "detach"):
        inputs = inputs.detach().cpu().numpy()
    if isinstance(inputs, np.ndarray) and (inputs.dtype.kind in "iu" or inputs.ndim == 2):
        return check_waveform(user_array_to_mono(as_float32(inputs), name), name)
    if isinstance(inputs, np.ndarray) and inputs.ndim == 1 and inputs.dtype.kind == "f":
        return check_waveform(inputs, name)
    return inputs


def load_audio(source: AudioSource, sampling_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a file path or in-memory file to mono float32, optionally resampled.

    Any format libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3 with libsndfile >= 1.1, AIFF…).
    Returns ``(array, rate)``; raises :class:`AudioDecodeError` naming the file on failure.
    """
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    if not isinstance(source, (bytes, bytearray)) and Path(source).is_dir():
        raise AudioDecodeError(
            f"{name}: a folder, not an audio file (for folders: hf-ser predict, or hf_ser.batch.predict_files)"
        )
    if not isinstance(source, (bytes, bytearray)) and not Path(source).is_file():
        raise AudioDecodeError(f"{name}: no such audio file")
    import soundfile as sf

    try:
        array, rate = sf.read(handle, dtype="float32", always_2d=False)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError…
        raise AudioDecodeError.cannot_decode(name, err) from err
    array = check_waveform(to_mono(array), name)
    if sampling_rate is not None:
        array, rate = resample(array, rate, sampling_rate), sampling_rate
    return array, int(rate)


@dataclass(frozen=True)
class LengthRequest:
    """transformers' length arguments of a feature extractor call, checked: ``max_length`` counts samples of the
    input waveform (as for ``Wav2Vec2FeatureExtractor``); ``truncation=True`` cuts each clip to it before its
    features, ``padding="max_length"`` pads the frames to what ``max_length`` samples give, ``pad_to_multiple_of``
    rounds the padded frames up. Both extractors had taken these in ``**kwargs`` and ignored them (a tutorial's
    ``max_length=16000, truncation=True`` gave the whole clip's frames)."""

    pad_to_max_length: bool = False
    max_length: int | None = None
    truncation: bool = False
    pad_to_multiple_of: int | None = None

    @classmethod
    def parse(cls, padding=True, max_length=None, truncation=None, pad_to_multiple_of=None, **unknown) -> LengthRequest:
        if unknown:  # they were swallowed by **kwargs and ignored
            raise TypeError(
                f"unexpected argument(s) {sorted(unknown)}: this feature extractor takes sampling_rate, "
                "return_tensors, return_attention_mask, padding, max_length, truncation and pad_to_multiple_of"
            )
        if padding in (False, "do_not_pad"):
            raise ValueError(
                f"padding={padding!r}: a batch is padded to its longest clip, and attention_mask marks the padding"
            )
        if padding not in (True, "longest", "max_length"):
            raise ValueError(f"padding must be True, 'longest' or 'max_length', got {padding!r}")
        for name, value in (("max_length", max_length), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1 (max_length: samples), got {value!r}")
        if (padding == "max_length" or truncation) and max_length is None:
            named = "padding='max_length'" if padding == "max_length" else "truncation=True"
            raise ValueError(f"{named} needs max_length (samples of the input waveform)")
        return cls(padding == "max_length", max_length, bool(truncation), pad_to_multiple_of)

    def truncate(self, wave: np.ndarray) -> np.ndarray:
        return wave[: self.max_length] if self.truncation else wave

    def frames(self, longest: int, frames_of: Callable[[int], int]) -> int:
        """Frames to pad a batch to: its ``longest`` clip's, ``max_length`` samples' (``frames_of``), rounded up."""
        target = longest
        if self.pad_to_max_length:
            target = frames_of(self.max_length)
            if longest > target:
                raise ValueError(
                    f"a clip gives {longest} frames, more than max_length={self.max_length} samples give ({target}): "
                    "add truncation=True"
                )
        if self.pad_to_multiple_of:
            target = -(-target // self.pad_to_multiple_of) * self.pad_to_multiple_of
        return target
