"""Whisper's log-mel, the one definition of the Whisper family's features (self-contained "remote code" file;
importing it needs neither torch nor transformers).

:func:`whisper_log_mel` is numpy: :class:`SERWhisperFeatureExtractor`'s numpy path and the torch-free ONNX runtime
call it. :func:`whisper_log_mel_torch` is the same in torch (imported when called), the extractor's default path.
Steps, as Whisper's own extractor: centred STFT (reflect padding, periodic Hann window of ``n_fft``), power, mel
filters (given: the extractor computes them once and an ONNX export stores them), log10 with a 1e-10 floor, the
last frame dropped, floor at the clip's max − 8, then (x + 4) / 4.

:func:`at_level` is the optional step before them (``level_dbfs`` of the extractor): Whisper's log-mel keeps the
recording's absolute level (its floor is relative, its scale is not), so the same speech 24 dB quieter is another
input; set to one RMS level, every gain of a clip gives the same features (clipping aside).
"""

from __future__ import annotations

import numpy as np

from .mfcc_features_ser import prepared_wave


def rms_dbfs(wave: np.ndarray) -> float:
    """The clip's RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(wave, dtype=np.float64))) + 1e-12))


def at_level(wave: np.ndarray, level_dbfs: float) -> np.ndarray:
    """The clip scaled to an RMS of ``level_dbfs`` (not clipped: features need no [-1, 1] range). Digital silence
    (no sample above 1e-9) is returned as it is: no gain gives it a level."""
    wave = np.asarray(wave, dtype=np.float32)
    if not np.abs(wave).max(initial=0.0) > 1e-9:
        return wave
    return (wave * 10 ** ((level_dbfs - rms_dbfs(wave)) / 20)).astype(np.float32)


def prepared_whisper_wave(
    wave: np.ndarray, rate: int, trim_db: float | None, trim_margin: float, level_dbfs: float | None
) -> np.ndarray:
    """The clip Whisper's log-mel sees: its silent ends cut where ``trim_db`` is set (the tiny family's step,
    ``mfcc_features_ser.prepared_wave``, DC offset removed first), then scaled to ``level_dbfs`` where that is set
    (:func:`at_level`). The extractor and the ONNX runtime both call this."""
    if trim_db is not None:
        wave = prepared_wave(wave, rate, trim_db=trim_db, trim_margin=trim_margin)
    if level_dbfs is not None:
        wave = at_level(wave, level_dbfs)
    return wave


def whisper_log_mel(wave: np.ndarray, mel_filters: np.ndarray, n_fft: int = 400, hop_length: int = 160) -> np.ndarray:
    """(frames, bins) float32 log-mel of one clip; ``mel_filters`` is (1 + n_fft // 2, bins)."""
    wave = np.asarray(wave, dtype=np.float64)
    padded = np.pad(wave, n_fft // 2, mode="reflect")
    count = 1 + (len(padded) - n_fft) // hop_length
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, n_fft), strides=(padded.strides[0] * hop_length, padded.strides[0])
    )
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    log_spec = np.log10(np.maximum(power[:-1] @ mel_filters, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def whisper_log_mel_torch(wave: np.ndarray, mel_filters: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """The same in torch (``torch.stft``), as ``WhisperFeatureExtractor``'s torch path computes it."""
    import torch

    signal = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    stft = torch.stft(signal, n_fft, hop_length, window=torch.hann_window(n_fft), return_complex=True)
    power = (stft[..., :-1].abs() ** 2).contiguous()
    log_spec = (torch.from_numpy(mel_filters).float().T @ power).clamp(min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).T.numpy()
