"""Whisper's log-mel for clips of any length (self-contained "remote code" file).

Equal to transformers' ``WhisperFeatureExtractor`` on one clip (n_fft 400, hop 160, 80 Slaney mel bands, log10,
floor at the clip's max − 8, then (x + 4) / 4; the last STFT frame dropped), but never padded to 30 s: each clip
is computed alone, then the batch is padded in feature space with zeros and an ``attention_mask``, so a clip
gives the same features alone and in a batch. Two paths, as in Whisper's own extractor, both defined in
:mod:`whisper_features_ser`: numpy (shared with the torch-free ONNX runtime; used where torch is absent) and torch
(``torch.stft``).
"""

from __future__ import annotations

import numpy as np
from transformers.audio_utils import mel_filter_bank
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from .audio_ser import LengthRequest, as_float32
from .whisper_features_ser import prepared_whisper_wave, whisper_log_mel, whisper_log_mel_torch


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class SERWhisperFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Whisper log-mel features at any length: ``input_features`` (batch, frames, ``feature_size``) and
    ``attention_mask`` (batch, frames), 100 frames per second at 16 kHz.

    Args:
        feature_size (`int`, defaults to 80): mel bands (Whisper-base: 80).
        sampling_rate (`int`, defaults to 16000): rate the audio must be given at (the pipeline resamples).
        n_fft (`int`, defaults to 400): STFT size (25 ms).
        hop_length (`int`, defaults to 160): STFT hop (10 ms).
        max_duration (`float`, defaults to 30.0): longest clip in seconds (Whisper's position embeddings).
        padding_value (`float`, defaults to 0.0): value of padded frames (the conv stem's own zero padding).
        backend (`str`, defaults to `"auto"`): ``"torch"``, ``"numpy"`` or ``"auto"`` (torch when installed).
        level_dbfs (`float`, *optional*): when set, every clip is first scaled to this RMS level (dBFS), so the
            features no longer depend on the recording's gain; ``None`` (the default) keeps Whisper's own features.
            A model must be trained with the setting it is used with (the encoder's states differ).
        trim_db (`float`, *optional*): when set, each clip's leading and trailing silence is cut first: its DC
            offset removed, then kept from its first to its last 32 ms frame within ``trim_db`` dB of its loudest,
            plus ``trim_margin`` seconds each side (the tiny family's step, ``mfcc_features_ser.prepared_wave``).
            ``None`` (the default) keeps the clip whole, as ser-whisper-general does: a 60 dB cut led on its
            validation clips with silence or faint noise added around them (bench/bench_trim.py) but cost the
            recording conditions on the validation actors of its recipe's RAVDESS folds, the room most (-4.1 UAR;
            bench/bench_test_time.py, docs/ROBUSTNESS.md). A recipe may cut only the clips a model answers
            (``evaluation.features``) or its training clips too (``features``).
        trim_margin (`float`, defaults to 0.5): seconds kept on each side of the span ``trim_db`` finds.
    """

    model_input_names = ["input_features", "attention_mask"]
    # no per-speaker step here (the family adapts its encoder states: ``config.adaptive_states``); a class
    # attribute, as on its ONNX twin ``WhisperNumpyFeatures``, so it is never saved (reading it had been an
    # AttributeError that ended `hf-ser score --model ser-whisper-general`)
    speaker_adaptive = False

    def __init__(
        self,
        feature_size: int = 80,
        sampling_rate: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        max_duration: float = 30.0,
        padding_value: float = 0.0,
        backend: str = "auto",
        level_dbfs: float | None = None,
        trim_db: float | None = None,
        trim_margin: float = 0.5,
        **kwargs,
    ):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        if backend not in ("auto", "torch", "numpy"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'numpy', got {backend!r}")
        self.n_fft, self.hop_length, self.max_duration, self.backend = n_fft, hop_length, max_duration, backend
        if level_dbfs is not None and not -80.0 <= level_dbfs <= 0.0:
            raise ValueError(f"level_dbfs must be between -80 and 0 dBFS (or None), got {level_dbfs!r}")
        self.level_dbfs = None if level_dbfs is None else float(level_dbfs)
        if not (trim_db is None or trim_db > 0) or not trim_margin >= 0:
            raise ValueError(f"trim_db must be > 0 (or None) and trim_margin >= 0, got {trim_db!r}, {trim_margin!r}")
        self.trim_db = None if trim_db is None else float(trim_db)
        self.trim_margin = float(trim_margin)
        self.return_attention_mask = True
        self.mel_filters = mel_filter_bank(
            num_frequency_bins=1 + n_fft // 2,
            num_mel_filters=feature_size,
            min_frequency=0.0,
            max_frequency=8000.0,
            sampling_rate=sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        )

    def to_dict(self):
        out = super().to_dict()
        out.pop("mel_filters", None)
        return out

    def log_mel(self, wave: np.ndarray) -> np.ndarray:
        """(frames, bins) log-mel of one clip at ``sampling_rate``."""
        use_torch = self.backend == "torch" or (self.backend == "auto" and _torch_available())
        compute = whisper_log_mel_torch if use_torch else whisper_log_mel
        wave = prepared_whisper_wave(wave, self.sampling_rate, self.trim_db, self.trim_margin, self.level_dbfs)
        return compute(wave, self.mel_filters, self.n_fft, self.hop_length)

    def __call__(
        self,
        raw_speech,
        sampling_rate: int | None = None,
        return_tensors=None,
        return_attention_mask: bool | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Log-mel of one clip (1-D) or a batch, padded to the longest. ``padding``, ``max_length`` (samples),
        ``truncation`` and ``pad_to_multiple_of`` as transformers' extractors take them (:class:`LengthRequest`);
        other arguments are refused (all were taken and ignored)."""
        request = LengthRequest.parse(**kwargs)
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"audio at {sampling_rate} Hz, but this feature extractor expects {self.sampling_rate} Hz: resample "
                "first (the hf-ser pipeline does, with soxr)"
            )
        batched = isinstance(raw_speech, list | tuple) and len(raw_speech) > 0 and np.ndim(raw_speech[0]) >= 1
        clips = [request.truncate(as_float32(c)) for c in (raw_speech if batched else [raw_speech])]
        for i, clip in enumerate(clips):
            if clip.ndim != 1:
                raise ValueError(f"clip {i}: expected mono audio (samples,), got shape {clip.shape}")
            if clip.size < self.n_fft // 2 + 1:
                raise ValueError(f"clip {i}: {clip.size} samples; at least {self.n_fft // 2 + 1} are needed")
            if not np.isfinite(clip).all():
                raise ValueError(f"clip {i}: contains NaN or inf samples")
            if clip.size > self.max_duration * self.sampling_rate:
                raise ValueError(
                    f"clip {i}: {clip.size / self.sampling_rate:.1f} s, at most {self.max_duration} s (where Whisper's "
                    "position embeddings end): classify a longer recording over time with hf_ser.segments"
                )
        feats = [self.log_mel(c) for c in clips]
        longest = request.frames(max(f.shape[0] for f in feats), lambda samples: samples // self.hop_length)
        batch = np.full((len(feats), longest, self.feature_size), self.padding_value, dtype=np.float32)
        mask = np.zeros((len(feats), longest), dtype=np.int32)
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = f
            mask[i, : f.shape[0]] = 1
        data = {"input_features": batch, "attention_mask": mask}
        if return_attention_mask is False:  # it was ignored; the model then takes every frame as the clip's
            data.pop("attention_mask")
        return BatchFeature(data, tensor_type=return_tensors)


__all__ = ["SERWhisperFeatureExtractor"]
