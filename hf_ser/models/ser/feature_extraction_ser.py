"""MFCC feature extractor for the SER model.

Self-contained "remote code" file: it imports only numpy, torch and transformers so that a
checkpoint folder works with ``trust_remote_code=True`` where hf-ser is not installed.

The signal processing is defined once, in ``mfcc_features_ser.py`` (numpy and batched torch paths side by side;
the torch-free ONNX runtime uses its numpy path): this class holds the settings, validates input and calls
its batched torch path, one STFT over the padded batch.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from .audio_ser import LengthRequest, as_float32
from .mfcc_features_ser import features_torch, num_frames, prepared_wave, speaker_statistics


class SERFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns raw mono waveforms into MFCC sequences of shape ``(batch, frames, n_mfcc)``.

    Args:
        sampling_rate (`int`, defaults to 16000):
            Rate the waveforms must be given at (resample before; the hf-ser pipeline does it).
        n_mfcc (`int`, defaults to 40):
            Number of cepstral coefficients kept (also the ``feature_size``).
        n_fft (`int`, defaults to 512):
            FFT size of the STFT.
        hop_length (`int`, defaults to 160):
            Hop between frames, in samples (10 ms at 16 kHz).
        win_length (`int`, *optional*, defaults to 400):
            Hann window length in samples (25 ms at 16 kHz); ``None`` means ``n_fft``.
        n_mels (`int`, defaults to 64):
            Number of mel bands before the DCT.
        f_min (`float`, defaults to 0.0):
            Lowest mel filter edge, Hz.
        f_max (`float`, *optional*):
            Highest mel filter edge, Hz; ``None`` means ``sampling_rate / 2``.
        top_db (`float`, *optional*, defaults to 80.0):
            Floor of the log-mel spectrogram, this many dB below the utterance's maximum; ``None`` disables.
        center (`bool`, defaults to `True`):
            Pad ``n_fft // 2`` zeros on both sides so frame ``t`` is centred on sample ``t * hop_length``.
        feature_type (`str`, defaults to `"mfcc"`):
            ``"mfcc"`` (log-mel → DCT, ``n_mfcc`` coefficients) or ``"log_mel"`` (the ``n_mels`` log-mel bands).
        mean_normalization (`str`, defaults to `"none"`):
            Per-utterance mean removal over the valid frames: ``"level"`` removes only the overall level (the mean
            of c0 for MFCCs, of all bands for log-mel), which makes the features invariant to recording gain;
            ``"all"`` removes every coefficient's mean (cepstral mean normalisation), which also cancels a fixed
            microphone response but removes the speaker's average spectral tilt; ``"none"`` keeps both.
        deltas (`int`, defaults to 0):
            Append first (1) or first and second (2) order deltas (regression over ±4 frames, edges repeated,
            as ``librosa.feature.delta(mode="nearest")``); ``feature_size`` becomes ``(1 + deltas)`` times larger.
        prosody (`bool`, defaults to `False`):
            Append two prosody channels after the spectral ones (and before deltas): the YIN pitch of voiced
            frames in semitones re 100 Hz (unvoiced frames get the utterance's mean voiced pitch) and the
            voicing, ``1 - aperiodicity`` clipped to [0, 1] (0 for frames 40 dB below the loudest one). Needs
            ``center=True``; ``feature_size`` grows by 2 per delta order.
        f0_min (`float`, defaults to 65.0):
            Lowest pitch searched, Hz.
        f0_max (`float`, defaults to 500.0):
            Highest pitch searched, Hz.
        pitch_frame_length (`int`, defaults to 1024):
            YIN frame length in samples (64 ms at 16 kHz); frames share the spectral frames' centres.
        speaker_adaptive (`bool`, defaults to `False`):
            The model was trained on speaker-adapted features: every feature standardised with the mean and
            standard deviation of its speaker's frames (from that speaker's unlabelled clips). Such an extractor
            refuses audio until it is adapted (:meth:`adapt`), since unadapted features are not what it learned.
        speaker_mean (`list[float]`, *optional*):
            The adapted speaker's mean of every feature (set by :meth:`adapt`, not by hand).
        speaker_std (`list[float]`, *optional*):
            The adapted speaker's standard deviation of every feature (set by :meth:`adapt`).
        do_normalize (`bool`, defaults to `False`):
            Per-utterance mean/variance normalisation of each coefficient over the valid frames. Off by default:
            on RAVDESS it cost 16 accuracy points (it removes the level and spectral tilt that carry emotion).
        max_duration (`float`, *optional*):
            If set, each waveform is cropped or zero-padded to exactly this many seconds (after ``offset``).
        offset (`float`, defaults to 0.0):
            Seconds skipped at the start of each waveform (the paper read 2.5 s from 0.6 s).
        remove_dc_offset (`bool`, defaults to `True`):
            Subtract each waveform's mean sample value (after ``offset`` and the ``max_duration`` cut, before
            padding): a recording's DC offset, which some sound cards and microphones add, otherwise fills the
            lowest mel band and lifts silent frames off the ``top_db`` floor (1 % of full scale changed the tiny
            model's answer on over half of the real clips tried). Saved configs without the field get it too.
        trim_db (`float`, *optional*):
            If set, cut each waveform's leading and trailing silence: keep from its first to its last 32 ms frame
            within ``trim_db`` dB of its loudest frame, plus ``trim_margin`` seconds each side (as
            ``librosa.effects.trim``; after the DC offset is removed). Silence around the speech is not the
            speaker's doing, yet every frame of it reaches the features: 1 s of it on each side of ser-general's
            validation clips took its UAR from 75.9 to 64.1 (bench/bench_trim.py). ``None``: the clip as given.
        trim_margin (`float`, defaults to 0.5):
            Seconds kept on each side of the span ``trim_db`` finds.
        padding_value (`float`, defaults to 0.0):
            Value written into padded frames of ``input_features``.
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        sampling_rate: int = 16000,
        n_mfcc: int = 40,
        n_fft: int = 512,
        hop_length: int = 160,
        win_length: int | None = 400,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        top_db: float | None = 80.0,
        center: bool = True,
        feature_type: str = "mfcc",
        mean_normalization: str = "none",
        deltas: int = 0,
        prosody: bool = False,
        f0_min: float = 65.0,
        f0_max: float = 500.0,
        pitch_frame_length: int = 1024,
        speaker_adaptive: bool = False,
        speaker_mean: list[float] | None = None,
        speaker_std: list[float] | None = None,
        do_normalize: bool = False,
        max_duration: float | None = None,
        offset: float = 0.0,
        remove_dc_offset: bool = True,
        trim_db: float | None = None,
        trim_margin: float = 0.5,
        padding_value: float = 0.0,
        **kwargs,
    ):
        kwargs.pop("feature_size", None)
        coefficients = (n_mels if feature_type == "log_mel" else n_mfcc) + (2 if prosody else 0)
        feature_size = coefficients * (1 + deltas) if deltas in (0, 1, 2) else coefficients
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        win_length = n_fft if win_length is None else win_length
        checks = {
            "sampling_rate": sampling_rate > 0,
            "n_mfcc": 0 < n_mfcc <= n_mels,
            "n_fft": n_fft > 0,
            "hop_length": hop_length > 0,
            "win_length": 0 < win_length <= n_fft,
            "n_mels": n_mels > 0,
            "f_max": f_max is None or f_min < f_max <= sampling_rate / 2,
            "top_db": top_db is None or top_db > 0,
            "max_duration": max_duration is None or max_duration > 0,
            "offset": offset >= 0,
            "trim_db": trim_db is None or trim_db > 0,
            "trim_margin": trim_margin >= 0,
            "feature_type": feature_type in ("mfcc", "log_mel"),
            "mean_normalization": mean_normalization in ("none", "level", "all"),
            "deltas": deltas in (0, 1, 2),
            "prosody": not prosody or center,
            "f0_max": 0 < f0_min < f0_max <= sampling_rate / 2,
            "pitch_frame_length": pitch_frame_length > np.ceil(sampling_rate / f0_min),
            "speaker_mean": speaker_mean is None or len(speaker_mean) == feature_size,
            "speaker_std": speaker_std is None or (len(speaker_std) == feature_size and min(speaker_std) > 0),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"SERFeatureExtractor: invalid {name}={locals()[name]!r}")
        self.n_mfcc = n_mfcc
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_mels = n_mels
        self.f_min = float(f_min)
        self.f_max = None if f_max is None else float(f_max)
        self.top_db = top_db
        self.center = center
        self.feature_type = feature_type
        self.mean_normalization = mean_normalization
        self.deltas = deltas
        self.prosody = prosody
        self.f0_min = float(f0_min)
        self.f0_max = float(f0_max)
        self.pitch_frame_length = pitch_frame_length
        self.speaker_adaptive = speaker_adaptive
        self.speaker_mean = None if speaker_mean is None else [float(v) for v in speaker_mean]
        self.speaker_std = None if speaker_std is None else [float(v) for v in speaker_std]
        self.do_normalize = do_normalize
        self.max_duration = max_duration
        self.offset = float(offset)
        self.remove_dc_offset = bool(remove_dc_offset)
        self.trim_db = None if trim_db is None else float(trim_db)
        self.trim_margin = float(trim_margin)

    # ------------------------------------------------------------------ input checks
    def _as_waveform(self, item, index: int, request: LengthRequest | None = None) -> np.ndarray:
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().numpy()
        array = np.asarray(item)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"audio item {index}: expected a numeric array, got dtype {array.dtype}")
        if array.ndim == 2 and 1 in array.shape:
            array = array.reshape(-1)
        if array.ndim != 1:
            raise ValueError(
                f"audio item {index}: expected mono audio with one dimension (samples,), got shape "
                f"{array.shape}; down-mix multi-channel audio first (hf_ser.audio.to_mono)"
            )
        if array.size == 0:
            raise ValueError(f"audio item {index}: received empty audio (0 samples)")
        array = as_float32(array)
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(f"audio item {index}: received {bad} non-finite samples (NaN or inf)")
        return self._prepared(request.truncate(array) if request else array)

    def _prepared(self, array: np.ndarray) -> np.ndarray:
        """The waveform the features see (offset, cut, DC offset, silent ends, padding: prepared_wave)."""
        array = prepared_wave(
            array,
            self.sampling_rate,
            self.offset,
            self.max_duration,
            self.remove_dc_offset,
            self.trim_db,
            self.trim_margin,
        )
        if array.size == 0:
            raise ValueError(f"audio is empty after skipping offset={self.offset}s")
        return array

    def num_frames(self, num_samples: int) -> int:
        """Number of frames the extractor gives for ``num_samples`` samples (after crop/pad)."""
        return num_frames(num_samples, self.n_fft, self.hop_length, self.center)

    # ------------------------------------------------------------------ computation
    def _mfcc(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        feats, mask = features_torch(waves, self)
        if self.speaker_mean is not None and self.speaker_std is not None:
            feats = (feats - torch.tensor(self.speaker_mean)) / torch.tensor(self.speaker_std)
        feats = feats.masked_fill(~mask[..., None], self.padding_value)
        return feats, mask.to(torch.int32)

    def adapt(self, clips: list, sampling_rate: int | None = None) -> SERFeatureExtractor:
        """A copy of this extractor adapted to one speaker: ``speaker_mean`` / ``speaker_std`` of every feature
        over all frames of ``clips`` (that speaker's unlabelled recordings, each a 1-D array at
        ``sampling_rate``), computed as training computed them (float64 sums; variance floored at 1e-8)."""
        if not clips:
            raise ValueError("adapt needs at least one clip of the speaker")
        plain = self.__class__(
            **{**self.to_dict(), "speaker_adaptive": False, "speaker_mean": None, "speaker_std": None}
        )
        mean, std = speaker_statistics(plain(clip, sampling_rate=sampling_rate)["input_features"][0] for clip in clips)
        return self.__class__(**{**self.to_dict(), "speaker_mean": mean.tolist(), "speaker_std": std.tolist()})

    def __call__(
        self,
        raw_speech: np.ndarray | list[float] | list[np.ndarray] | torch.Tensor,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Extract MFCCs from one waveform (1-D) or a batch (a list of 1-D arrays or a 2-D array). ``padding``,
        ``max_length`` (samples), ``truncation`` and ``pad_to_multiple_of`` as transformers' extractors take them
        (:class:`LengthRequest`); other arguments are refused."""
        request = LengthRequest.parse(**kwargs)
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"The audio was given at sampling_rate={sampling_rate} but this feature extractor expects "
                f"{self.sampling_rate} Hz; resample it first (hf_ser.audio.resample)."
            )
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        is_batched = isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0 and not np.isscalar(raw_speech[0])
        if not is_batched and isinstance(raw_speech, (np.ndarray, torch.Tensor)) and raw_speech.ndim == 2:
            is_batched = min(raw_speech.shape) > 1
        items = list(raw_speech) if is_batched else [raw_speech]
        if not items:
            raise ValueError("received an empty batch (no audio items)")
        waves = [self._as_waveform(item, i, request) for i, item in enumerate(items)]
        if self.speaker_adaptive and self.speaker_mean is None:
            raise ValueError(
                "this model was trained on speaker-adapted features: adapt the feature extractor to the speaker "
                "first (feature_extractor.adapt(clips), load_classifier(..., adapt_on=folder) or "
                "hf-ser predict --adapt-on FOLDER)"
            )
        with torch.no_grad():
            features, mask = self._mfcc(waves)
        extra = request.frames(features.shape[1], self.num_frames) - features.shape[1]
        if extra:  # padding="max_length" or pad_to_multiple_of: padded frames, outside the mask
            features = torch.nn.functional.pad(features, (0, 0, 0, extra), value=self.padding_value)
            mask = torch.nn.functional.pad(mask, (0, extra), value=0)
        data = {"input_features": features}
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        if return_attention_mask:
            data["attention_mask"] = mask
        if return_tensors != "pt":
            data = {k: v.numpy() for k, v in data.items()}
            if return_tensors is None:  # each clip's own frames, unless a padded length was asked for
                keep = [features.shape[1] if extra else int(mask[i].sum()) for i in range(len(waves))]
                data = {k: list(v[i, : keep[i]] for i in range(len(waves))) for k, v in data.items()}
        return BatchFeature(data=data, tensor_type=None)


__all__ = ["SERFeatureExtractor"]
