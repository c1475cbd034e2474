"""MFCC feature extractor for the SER model.

Self-contained "remote code" file: it imports only numpy, torch and transformers so that a
checkpoint folder works with ``trust_remote_code=True`` where hf-ser is not installed.

The MFCC recipe is librosa's (the reference the paper used): a centred, zero-padded STFT with a
periodic Hann window, power spectrum, Slaney mel filter bank, ``power_to_db`` with a ``top_db``
floor taken per utterance, then an orthonormal DCT-II. It is computed in torch with one STFT over
the padded batch; every per-utterance statistic (the ``top_db`` floor, normalisation) is taken
over that utterance's valid frames only, so an item gives the same features alone or in a batch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

_AMIN = 1e-10  # librosa.power_to_db's floor before the logarithm


@lru_cache(maxsize=8)
def _mel_basis(n_fft: int, n_mels: int, f_min: float, f_max: float, sampling_rate: int) -> torch.Tensor:
    """(n_freqs, n_mels) Slaney-normalised, Slaney-scale mel filters, as ``librosa.filters.mel``."""
    basis = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=f_min,
        max_frequency=f_max,
        sampling_rate=sampling_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(basis.astype(np.float32))


@lru_cache(maxsize=8)
def _dct_matrix(n_mels: int, n_mfcc: int) -> torch.Tensor:
    """(n_mels, n_mfcc) orthonormal DCT-II basis, as ``scipy.fft.dct(type=2, norm="ortho")``."""
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    return torch.from_numpy(basis.T.astype(np.float32))


@lru_cache(maxsize=8)
def _hann_window(win_length: int) -> torch.Tensor:
    return torch.hann_window(win_length, periodic=True, dtype=torch.float32)


def _delta(feats: torch.Tensor, frames: torch.Tensor, half_width: int = 4) -> torch.Tensor:
    """Regression deltas over ±``half_width`` frames of (B, T, C), each item's edges repeated at its own end.

    The least-squares slope equals ``librosa.feature.delta(width=9, order=1, mode="nearest")``.
    """
    offsets = torch.arange(-half_width, half_width + 1)
    weights = offsets.to(feats.dtype) / float((offsets**2).sum())
    out = torch.zeros_like(feats)
    for row, length in enumerate(frames.tolist()):
        index = (torch.arange(length)[:, None] + offsets[None, :]).clamp(0, length - 1)  # (T, width)
        out[row, :length] = torch.einsum("twc,w->tc", feats[row, index], weights)
    return out


def _yin(
    batch: torch.Tensor,
    sampling_rate: int,
    hop_length: int,
    frame_length: int,
    f_min: float,
    f_max: float,
    threshold: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """YIN pitch (de Cheveigné & Kawahara 2002) of ``(B, samples)`` centred frames, step for step as
    ``librosa.yin`` (0.11) computes it, in torch so that it runs wherever the extractor runs (torchaudio, which
    has a pitch detector, is not available here). Returns ``(f0 in Hz, aperiodicity, energy)``, each ``(B, frames)``:
    the aperiodicity is the normalised difference at the chosen period (0 for a perfectly periodic frame);
    and each frame's energy (sum of squares), to tell silence from sound."""
    min_period = int(np.floor(sampling_rate / f_max))
    max_period = min(int(np.ceil(sampling_rate / f_min)), frame_length - 1)
    padded = torch.nn.functional.pad(batch, (frame_length // 2, frame_length // 2))
    frames = padded.unfold(-1, frame_length, hop_length)  # (B, T, N)
    size = 1 << (2 * frame_length - 1).bit_length()
    spectrum = torch.fft.rfft(frames, n=size)
    acf = torch.fft.irfft(spectrum.real.square() + spectrum.imag.square(), n=size)[..., : max_period + 1]
    head = torch.cumsum(frames.square(), dim=-1)[..., :max_period]  # sum of y[m]^2 for m < k, k = 1..max
    diff = 2 * (acf[..., :1] - acf[..., 1:]) - head  # d(k), k = 1..max_period
    cumulative_mean = torch.cumsum(diff, dim=-1) / torch.arange(1, max_period + 1, dtype=diff.dtype)
    cmnd = diff[..., min_period - 1 :] / (cumulative_mean[..., min_period - 1 :] + torch.finfo(diff.dtype).tiny)
    # parabolic shift of each lag's optimum; 0 at the edges or where the optimum is outside [n-1, n+1]
    left, centre, right = cmnd[..., :-2], cmnd[..., 1:-1], cmnd[..., 2:]
    a, b = right + left - 2 * centre, (right - left) / 2
    inner = torch.where(b.abs() >= a.abs(), torch.zeros_like(a), -b / a)
    shifts = torch.nn.functional.pad(inner, (1, 1))
    previous = torch.nn.functional.pad(cmnd, (1, 0), value=float("inf"))[..., :-1]
    following = torch.cat([cmnd[..., 1:], cmnd[..., -1:]], dim=-1)
    trough = (cmnd < previous) & (cmnd <= following)
    trough[..., 0] = cmnd[..., 0] < cmnd[..., 1]
    below = trough & (cmnd < threshold)
    first_below = torch.argmax(below.to(torch.int8), dim=-1)
    index = torch.where(below.any(dim=-1), first_below, torch.argmin(cmnd, dim=-1))[..., None]
    period = min_period + index + torch.gather(shifts, -1, index)
    return (sampling_rate / period)[..., 0], torch.gather(cmnd, -1, index)[..., 0], acf[..., 0]


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

    # ------------------------------------------------------------------ input checks
    def _as_waveform(self, item, index: int) -> np.ndarray:
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
        if np.issubdtype(array.dtype, np.integer):
            info = np.iinfo(array.dtype)
            array = array.astype(np.float32) / float(max(abs(info.min), info.max))
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(f"audio item {index}: received {bad} non-finite samples (NaN or inf)")
        return self._crop_or_pad(array)

    def _crop_or_pad(self, array: np.ndarray) -> np.ndarray:
        start = int(round(self.offset * self.sampling_rate))
        if start:
            array = array[start:]
        if self.max_duration is not None:
            size = int(round(self.max_duration * self.sampling_rate))
            array = array[:size]
            if array.size < size:
                array = np.pad(array, (0, size - array.size))
        if array.size == 0:
            raise ValueError(f"audio is empty after skipping offset={self.offset}s")
        return array

    def num_frames(self, num_samples: int) -> int:
        """Number of frames the extractor gives for ``num_samples`` samples (after crop/pad)."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return 1 + max(num_samples - self.n_fft, 0) // self.hop_length

    # ------------------------------------------------------------------ computation
    def _mfcc(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = [w.size for w in waves]
        longest = max(max(lengths), 1 if self.center else self.n_fft)
        batch = torch.zeros(len(waves), longest, dtype=torch.float32)
        for row, wave in enumerate(waves):
            batch[row, : wave.size] = torch.from_numpy(wave)
        spec = torch.stft(
            batch,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=_hann_window(self.win_length),
            center=self.center,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # (B, freqs, T)
        f_max = self.f_max if self.f_max is not None else self.sampling_rate / 2
        mel = torch.matmul(
            power.transpose(1, 2), _mel_basis(self.n_fft, self.n_mels, self.f_min, f_max, self.sampling_rate)
        )  # (B, T, mels)
        log_mel = 10.0 * torch.log10(torch.clamp(mel, min=_AMIN))
        frames = torch.tensor([self.num_frames(n) for n in lengths])
        mask = torch.arange(log_mel.shape[1])[None, :] < frames[:, None]  # (B, T)
        if self.top_db is not None:
            peak = log_mel.masked_fill(~mask[..., None], float("-inf")).amax(dim=(1, 2), keepdim=True)
            log_mel = torch.maximum(log_mel, peak - self.top_db)
        mfcc = self.feature_type == "mfcc"
        feats = torch.matmul(log_mel, _dct_matrix(self.n_mels, self.n_mfcc)) if mfcc else log_mel  # (B, T, C)
        weights = mask[..., None].to(feats.dtype)
        count = weights.sum(dim=1, keepdim=True)
        mean = (feats * weights).sum(dim=1, keepdim=True) / count  # (B, 1, C) over valid frames
        if self.mean_normalization == "all":
            feats = feats - mean
        elif self.mean_normalization == "level" and self.feature_type == "mfcc":
            feats = torch.cat([feats[..., :1] - mean[..., :1], feats[..., 1:]], dim=-1)
        elif self.mean_normalization == "level":
            feats = feats - mean.mean(dim=-1, keepdim=True)
        if self.prosody:
            feats = torch.cat([feats, self._prosody(batch, mask)], dim=-1)
        if self.do_normalize:
            mean = (feats * weights).sum(dim=1, keepdim=True) / count
            var = ((feats - mean).square() * weights).sum(dim=1, keepdim=True) / count
            feats = (feats - mean) / torch.sqrt(var + 1e-7)
        if self.deltas:
            first = _delta(feats, frames)
            parts = [feats, first] + ([_delta(first, frames)] if self.deltas == 2 else [])
            feats = torch.cat(parts, dim=-1)
        if self.speaker_mean is not None and self.speaker_std is not None:
            feats = (feats - torch.tensor(self.speaker_mean)) / torch.tensor(self.speaker_std)
        feats = feats.masked_fill(~mask[..., None], self.padding_value)
        return feats, mask.to(torch.int32)

    def _prosody(self, batch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, T, 2)``: pitch in semitones re 100 Hz (voiced frames; the mean voiced pitch elsewhere), voicing."""
        f0, aperiodicity, energy = _yin(
            batch, self.sampling_rate, self.hop_length, self.pitch_frame_length, self.f0_min, self.f0_max
        )
        f0, aperiodicity, energy = f0[:, : mask.shape[1]], aperiodicity[:, : mask.shape[1]], energy[:, : mask.shape[1]]
        loud = energy > energy.masked_fill(~mask, 0.0).amax(dim=1, keepdim=True) * 1e-4  # within 40 dB of the peak
        voicing = (1.0 - aperiodicity).clamp(0.0, 1.0) * loud
        voiced = (voicing > 0.5) & mask
        semitones = 12.0 * torch.log2(f0 / 100.0)
        count = voiced.sum(dim=1, keepdim=True)
        mean = (semitones * voiced).sum(dim=1, keepdim=True) / count.clamp(min=1)
        pitch = torch.where(voiced, semitones, mean)
        return torch.stack([pitch, voicing], dim=-1)

    def adapt(self, clips: list, sampling_rate: int | None = None) -> SERFeatureExtractor:
        """A copy of this extractor adapted to one speaker: ``speaker_mean`` / ``speaker_std`` of every feature
        over all frames of ``clips`` (that speaker's unlabelled recordings, each a 1-D array at
        ``sampling_rate``), computed as training computed them (float64 sums; variance floored at 1e-8)."""
        if not clips:
            raise ValueError("adapt needs at least one clip of the speaker")
        plain = self.__class__(
            **{**self.to_dict(), "speaker_adaptive": False, "speaker_mean": None, "speaker_std": None}
        )
        total, squares, count = 0.0, 0.0, 0
        for clip in clips:
            frames = np.asarray(plain(clip, sampling_rate=sampling_rate)["input_features"][0], dtype=np.float64)
            total, squares, count = (
                total + frames.sum(axis=0),
                squares + np.square(frames).sum(axis=0),
                count + len(frames),
            )
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 1e-8))
        return self.__class__(**{**self.to_dict(), "speaker_mean": mean.tolist(), "speaker_std": std.tolist()})

    def __call__(
        self,
        raw_speech: np.ndarray | list[float] | list[np.ndarray] | torch.Tensor,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Extract MFCCs from one waveform (1-D) or a batch (a list of 1-D arrays or a 2-D array)."""
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
        waves = [self._as_waveform(item, i) for i, item in enumerate(items)]
        if self.speaker_adaptive and self.speaker_mean is None:
            raise ValueError(
                "this model was trained on speaker-adapted features: adapt the feature extractor to the speaker "
                "first (feature_extractor.adapt(clips), load_classifier(..., adapt_on=folder) or "
                "hf-ser predict --adapt-on FOLDER)"
            )
        with torch.no_grad():
            features, mask = self._mfcc(waves)
        data = {"input_features": features}
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        if return_attention_mask:
            data["attention_mask"] = mask
        if return_tensors != "pt":
            data = {k: v.numpy() for k, v in data.items()}
            if return_tensors is None:
                data = {k: list(v[i, : int(mask[i].sum())] for i in range(len(waves))) for k, v in data.items()}
        return BatchFeature(data=data, tensor_type=None)


__all__ = ["SERFeatureExtractor"]
