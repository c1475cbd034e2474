"""The tiny family's features, defined once (self-contained "remote code" file; importing it needs neither torch
nor transformers, so the torch-free ONNX runtime uses it too).

The recipe is librosa's (the reference the paper used): a centred, zero-padded STFT with a periodic Hann window,
power spectrum, Slaney mel filter bank, ``power_to_db`` with a ``top_db`` floor taken per utterance, an orthonormal
DCT-II (MFCC) or the log-mel itself, then the options: mean normalisation (``all`` or ``level``), YIN prosody
(pitch in semitones and voicing), per-utterance standardisation, regression deltas, and per-speaker
standardisation. Two paths of the same steps, side by side as in transformers' Whisper extractor:

- numpy, one clip: :func:`features_numpy` (the ONNX runtime), with :func:`delta_numpy` and :func:`yin_numpy`;
- torch, a padded batch: :func:`features_torch` (``SERFeatureExtractor``, the default), with :func:`delta_torch`
  and :func:`yin_torch`; every per-utterance statistic is taken over that item's valid frames only, so an item
  gives the same features alone or in a batch.

Both take the waveform from :func:`prepared_wave` (crop, pad, DC offset removed), read the filters from
:func:`mel_basis` and :func:`dct_matrix`, and one speaker's statistics come from
:func:`speaker_statistics` (the extractor's and the ONNX runtime's ``adapt``, and training's standardisation).
Parity tests hold the two paths equal to float32 precision and to librosa.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np

AMIN = 1e-10  # librosa.power_to_db's floor before the logarithm


@lru_cache(maxsize=8)
def mel_basis(n_fft: int, n_mels: int, f_min: float, f_max: float, sampling_rate: int) -> np.ndarray:
    """(n_freqs, n_mels) Slaney-normalised, Slaney-scale mel filters, as ``librosa.filters.mel``."""
    from transformers.audio_utils import mel_filter_bank

    basis = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=f_min,
        max_frequency=f_max,
        sampling_rate=sampling_rate,
        norm="slaney",
        mel_scale="slaney",
    ).astype(np.float32)
    basis.flags.writeable = False  # shared by the cache
    return basis


@lru_cache(maxsize=8)
def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """(n_mels, n_mfcc) orthonormal DCT-II basis, as ``scipy.fft.dct(type=2, norm="ortho")``."""
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    basis = basis.T.astype(np.float32)
    basis.flags.writeable = False
    return basis


@lru_cache(maxsize=8)
def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``win_length``, zero-padded to ``n_fft`` in the centre (as ``torch.stft``)."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    left = (n_fft - win_length) // 2
    window = np.pad(window, (left, n_fft - win_length - left)).astype(np.float32)
    window.flags.writeable = False
    return window


@lru_cache(maxsize=16)
def _torch_constants(n_fft: int, win_length: int, n_mels: int, n_mfcc: int, f_min: float, f_max: float, rate: int):
    """(Hann window, mel basis, DCT matrix) as torch tensors, built once per setting (the batched path's hot loop)."""
    import torch

    return (
        torch.hann_window(win_length, periodic=True, dtype=torch.float32),
        torch.from_numpy(mel_basis(n_fft, n_mels, f_min, f_max, rate).copy()),
        torch.from_numpy(dct_matrix(n_mels, n_mfcc).copy()),
    )


def num_frames(num_samples: int, n_fft: int, hop_length: int, center: bool = True) -> int:
    """Frames of the STFT of ``num_samples`` samples."""
    if center:
        return 1 + num_samples // hop_length
    return 1 + max(num_samples - n_fft, 0) // hop_length


TRIM_FRAME_SECONDS = 0.032  # the frames whose level decides what is silence at a clip's ends (hop: a quarter)


def sound_span(wave: np.ndarray, rate: int, below_peak_db: float, margin: float) -> tuple[int, int]:
    """``(start, end)`` samples of ``wave`` from its first to its last frame within ``below_peak_db`` of its loudest
    frame (the power of each 32 ms frame about its own mean, so that a DC offset in the silence counts as none),
    widened by ``margin`` seconds each side: the leading and trailing silence cut, as ``librosa.effects.trim`` does
    (written here: this file must run with numpy alone)."""
    frame = max(1, int(round(TRIM_FRAME_SECONDS * rate)))
    hop = max(1, frame // 4)
    padded = np.pad(wave.astype(np.float64), (0, max(0, frame - wave.size)))
    power = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop].var(axis=1)  # a constant is no sound
    level = 10.0 * np.log10(np.maximum(power, 1e-20))
    loud = np.flatnonzero(level >= level.max() - below_peak_db)
    extra = int(round(margin * rate))
    return max(0, int(loud[0]) * hop - extra), min(wave.size, int(loud[-1]) * hop + frame + extra)


def prepared_wave(
    wave: np.ndarray,
    rate: int,
    offset: float = 0.0,
    max_duration: float | None = None,
    remove_dc: bool = True,
    trim_db: float | None = None,
    trim_margin: float = 0.5,
) -> np.ndarray:
    """The waveform the features see: ``offset`` seconds skipped, cut to ``max_duration``, its DC offset (mean
    sample value) removed, its leading and trailing silence cut where ``trim_db`` is set (:func:`sound_span`), then
    zero-padded to ``max_duration``. The extractor and the ONNX runtime both call this.

    A recording's DC offset (a constant added by a sound card or microphone amplifier) falls into the lowest mel
    band and lifts the silent frames off the ``top_db`` floor: an offset of 1 % of full scale changed the bundled
    tiny model's answer on 17 of 30 RAVDESS clips (0.3 % on 4 of 30). Removing the mean, as Kaldi's
    ``remove-dc-offset`` does per frame, leaves a recording without one (training data) as it was."""
    start = int(round(offset * rate))
    if start:
        wave = wave[start:]
    size = None if max_duration is None else int(round(max_duration * rate))
    if size is not None:
        wave = wave[:size]
    if remove_dc and wave.size:
        wave = (wave - wave.mean(dtype=np.float64)).astype(np.float32)
    if trim_db is not None and wave.size:
        start, end = sound_span(wave, rate, trim_db, trim_margin)
        wave = wave[start:end]
    if size is not None and wave.size < size:
        wave = np.pad(wave, (0, size - wave.size))
    return wave


def speaker_statistics(clips: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One speaker's (mean, std) of every feature over all frames of their clips (each ``(frames, features)``):
    float64 sums, variance floored at 1e-8, returned as float32."""
    total, squares, count = 0.0, 0.0, 0
    for frames in clips:
        frames = np.asarray(frames, dtype=np.float64)
        total, squares, count = total + frames.sum(axis=0), squares + np.square(frames).sum(axis=0), count + len(frames)
    if count == 0:
        raise ValueError("speaker statistics need at least one frame of the speaker")
    mean = total / count
    return mean.astype(np.float32), np.sqrt(np.maximum(squares / count - mean**2, 1e-8)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- numpy path
def delta_numpy(feats: np.ndarray, half_width: int = 4) -> np.ndarray:
    """Regression deltas over ±``half_width`` frames of (T, C), edges repeated (librosa's ``mode="nearest"``)."""
    offsets = np.arange(-half_width, half_width + 1)
    weights = offsets / float((offsets**2).sum())
    index = np.clip(np.arange(feats.shape[0])[:, None] + offsets[None, :], 0, feats.shape[0] - 1)
    return np.einsum("twc,w->tc", feats[index], weights).astype(np.float32)


def yin_numpy(wave: np.ndarray, sr: int, hop: int, frame_length: int, f_min: float, f_max: float, threshold=0.1):
    """:func:`yin_torch` for one waveform in numpy: f0 (Hz), aperiodicity and energy per frame."""
    min_period = int(np.floor(sr / f_max))
    max_period = min(int(np.ceil(sr / f_min)), frame_length - 1)
    padded = np.pad(wave.astype(np.float32), (frame_length // 2, frame_length // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop]
    size = 1 << (2 * frame_length - 1).bit_length()
    acf = np.fft.irfft(np.abs(np.fft.rfft(frames, n=size)) ** 2, n=size)[:, : max_period + 1]
    head = np.cumsum(frames.astype(np.float64) ** 2, axis=1)[:, :max_period]
    diff = 2 * (acf[:, :1] - acf[:, 1:]) - head
    cumulative_mean = np.cumsum(diff, axis=1) / np.arange(1, max_period + 1)
    cmnd = diff[:, min_period - 1 :] / (cumulative_mean[:, min_period - 1 :] + np.finfo(np.float32).tiny)
    left, centre, right = cmnd[:, :-2], cmnd[:, 1:-1], cmnd[:, 2:]
    a, b = right + left - 2 * centre, (right - left) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a)
    shifts = np.pad(inner, ((0, 0), (1, 1)))
    previous = np.concatenate([np.full((len(cmnd), 1), np.inf), cmnd[:, :-1]], axis=1)
    following = np.concatenate([cmnd[:, 1:], cmnd[:, -1:]], axis=1)
    trough = (cmnd < previous) & (cmnd <= following)
    trough[:, 0] = cmnd[:, 0] < cmnd[:, 1]
    below = trough & (cmnd < threshold)
    index = np.where(below.any(axis=1), np.argmax(below, axis=1), np.argmin(cmnd, axis=1))[:, None]
    period = min_period + index + np.take_along_axis(shifts, index, axis=1)
    return (sr / period)[:, 0], np.take_along_axis(cmnd, index, axis=1)[:, 0], acf[:, 0]


def prosody_numpy(wave: np.ndarray, s: dict, count: int) -> np.ndarray:
    """(count, 2): pitch in semitones re 100 Hz (voiced frames; the mean voiced pitch elsewhere), voicing."""
    f0, aperiodicity, energy = yin_numpy(
        wave,
        s["sampling_rate"],
        s["hop_length"],
        s.get("pitch_frame_length", 1024),
        s.get("f0_min", 65.0),
        s.get("f0_max", 500.0),
    )
    f0, aperiodicity, energy = f0[:count], aperiodicity[:count], energy[:count]
    voicing = np.clip(1.0 - aperiodicity, 0.0, 1.0) * (energy > energy.max() * 1e-4)
    voiced = voicing > 0.5
    semitones = 12.0 * np.log2(f0 / 100.0)
    mean = semitones[voiced].mean() if voiced.any() else 0.0
    return np.stack([np.where(voiced, semitones, mean), voicing], axis=1)


def features_numpy(wave: np.ndarray, s: dict, mel: np.ndarray, dct: np.ndarray) -> np.ndarray:
    """(frames, features) of one clip at ``s["sampling_rate"]``; ``s`` holds the extractor's settings (as in
    ``preprocessor_config.json``), ``mel`` / ``dct`` the matrices of :func:`mel_basis` / :func:`dct_matrix`.
    Crop/pad and per-speaker standardisation are the caller's."""
    n_fft, hop = s["n_fft"], s["hop_length"]
    window = hann_window(s.get("win_length") or n_fft, n_fft)
    center = s.get("center", True)
    padded = np.pad(wave, (n_fft // 2, n_fft // 2)) if center else np.pad(wave, (0, max(0, n_fft - wave.size)))
    count = num_frames(wave.size, n_fft, hop, center)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:count]
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    log_mel = 10.0 * np.log10(np.maximum(power.astype(np.float32) @ mel, AMIN))
    if s.get("top_db") is not None:
        log_mel = np.maximum(log_mel, log_mel.max() - s["top_db"])
    mfcc = s.get("feature_type", "mfcc") == "mfcc"
    feats = log_mel @ dct if mfcc else log_mel
    mode = s.get("mean_normalization", "none")
    if mode == "all":
        feats = feats - feats.mean(axis=0, keepdims=True)
    elif mode == "level" and mfcc:
        feats = np.concatenate([feats[:, :1] - feats[:, :1].mean(), feats[:, 1:]], axis=1)
    elif mode == "level":
        feats = feats - feats.mean()
    if s.get("prosody"):
        feats = np.concatenate([feats, prosody_numpy(wave, s, feats.shape[0])], axis=1)
    if s.get("do_normalize"):
        feats = (feats - feats.mean(axis=0)) / np.sqrt(feats.var(axis=0) + 1e-7)
    if s.get("deltas"):
        first = delta_numpy(feats)
        feats = np.concatenate([feats, first] + ([delta_numpy(first)] if s["deltas"] == 2 else []), axis=1)
    return feats.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- torch path
def delta_torch(feats, frames, half_width: int = 4):
    """Regression deltas over ±``half_width`` frames of (B, T, C), each item's edges repeated at its own end.

    The least-squares slope equals ``librosa.feature.delta(width=9, order=1, mode="nearest")``.
    """
    import torch

    offsets = torch.arange(-half_width, half_width + 1)
    weights = offsets.to(feats.dtype) / float((offsets**2).sum())
    out = torch.zeros_like(feats)
    for row, length in enumerate(frames.tolist()):
        index = (torch.arange(length)[:, None] + offsets[None, :]).clamp(0, length - 1)  # (T, width)
        out[row, :length] = torch.einsum("twc,w->tc", feats[row, index], weights)
    return out


def yin_torch(batch, sampling_rate: int, hop_length: int, frame_length: int, f_min: float, f_max: float, threshold=0.1):
    """YIN pitch (de Cheveigné & Kawahara 2002) of ``(B, samples)`` centred frames, step for step as
    ``librosa.yin`` (0.11) computes it, in torch so that it runs wherever the extractor runs (torchaudio, which
    has a pitch detector, is not available here). Returns ``(f0 in Hz, aperiodicity, energy)``, each ``(B, frames)``:
    the aperiodicity is the normalised difference at the chosen period (0 for a perfectly periodic frame);
    and each frame's energy (sum of squares), to tell silence from sound."""
    import torch

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


def prosody_torch(batch, mask, s):
    """``(B, T, 2)``: :func:`prosody_numpy` for a padded batch (``s``: the extractor)."""
    import torch

    f0, aperiodicity, energy = yin_torch(batch, s.sampling_rate, s.hop_length, s.pitch_frame_length, s.f0_min, s.f0_max)
    f0, aperiodicity, energy = f0[:, : mask.shape[1]], aperiodicity[:, : mask.shape[1]], energy[:, : mask.shape[1]]
    loud = energy > energy.masked_fill(~mask, 0.0).amax(dim=1, keepdim=True) * 1e-4  # within 40 dB of the peak
    voicing = (1.0 - aperiodicity).clamp(0.0, 1.0) * loud
    voiced = (voicing > 0.5) & mask
    semitones = 12.0 * torch.log2(f0 / 100.0)
    count = voiced.sum(dim=1, keepdim=True)
    mean = (semitones * voiced).sum(dim=1, keepdim=True) / count.clamp(min=1)
    pitch = torch.where(voiced, semitones, mean)
    return torch.stack([pitch, voicing], dim=-1)


def features_torch(waves: list[np.ndarray], s):
    """(features (B, T, C), mask (B, T) bool) of a batch of clips, padded with zeros to the longest; ``s`` is the
    extractor (its settings as attributes). Per-speaker standardisation and the padding value are the caller's."""
    import torch

    lengths = [w.size for w in waves]
    longest = max(max(lengths), 1 if s.center else s.n_fft)
    batch = torch.zeros(len(waves), longest, dtype=torch.float32)
    for row, wave in enumerate(waves):
        batch[row, : wave.size] = torch.from_numpy(wave)
    f_max = s.f_max if s.f_max is not None else s.sampling_rate / 2
    window, mel, dct = _torch_constants(s.n_fft, s.win_length, s.n_mels, s.n_mfcc, s.f_min, f_max, s.sampling_rate)
    spec = torch.stft(
        batch,
        n_fft=s.n_fft,
        hop_length=s.hop_length,
        win_length=s.win_length,
        window=window,
        center=s.center,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()  # (B, freqs, T)
    log_mel = 10.0 * torch.log10(torch.clamp(torch.matmul(power.transpose(1, 2), mel), min=AMIN))  # (B, T, mels)
    frames = torch.tensor([num_frames(n, s.n_fft, s.hop_length, s.center) for n in lengths])
    mask = torch.arange(log_mel.shape[1])[None, :] < frames[:, None]  # (B, T)
    if s.top_db is not None:
        peak = log_mel.masked_fill(~mask[..., None], float("-inf")).amax(dim=(1, 2), keepdim=True)
        log_mel = torch.maximum(log_mel, peak - s.top_db)
    mfcc = s.feature_type == "mfcc"
    feats = torch.matmul(log_mel, dct) if mfcc else log_mel
    weights = mask[..., None].to(feats.dtype)
    count = weights.sum(dim=1, keepdim=True)
    mean = (feats * weights).sum(dim=1, keepdim=True) / count  # (B, 1, C) over valid frames
    if s.mean_normalization == "all":
        feats = feats - mean
    elif s.mean_normalization == "level" and mfcc:
        feats = torch.cat([feats[..., :1] - mean[..., :1], feats[..., 1:]], dim=-1)
    elif s.mean_normalization == "level":
        feats = feats - mean.mean(dim=-1, keepdim=True)
    if s.prosody:
        feats = torch.cat([feats, prosody_torch(batch, mask, s)], dim=-1)
    if s.do_normalize:
        mean = (feats * weights).sum(dim=1, keepdim=True) / count
        var = ((feats - mean).square() * weights).sum(dim=1, keepdim=True) / count
        feats = (feats - mean) / torch.sqrt(var + 1e-7)
    if s.deltas:
        first = delta_torch(feats, frames)
        feats = torch.cat([feats, first] + ([delta_torch(first, frames)] if s.deltas == 2 else []), dim=-1)
    return feats, mask
