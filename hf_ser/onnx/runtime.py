"""ONNX inference without torch or transformers: numpy MFCC + onnxruntime.

    from hf_ser.onnx.runtime import OnnxClassifier
    clf = OnnxClassifier("exported/")          # or OnnxClassifier("exported/", int8=True)
    clf("clip.wav")                            # [{"label": ..., "score": ...}, ...]

The features repeat :class:`~hf_ser.models.ser.feature_extraction_ser.SERFeatureExtractor` step by step in
numpy (centred zero-padded STFT with a periodic Hann window, power, mel, dB with a ``top_db`` floor, DCT,
mean normalisation, YIN prosody, deltas); the mel and DCT matrices come from the export, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..models.ser.audio_ser import decode_input
from ..models.ser.whisper_features_ser import whisper_log_mel

_AMIN = 1e-10


def _delta(feats: np.ndarray, half_width: int = 4) -> np.ndarray:
    offsets = np.arange(-half_width, half_width + 1)
    weights = offsets / float((offsets**2).sum())
    index = np.clip(np.arange(feats.shape[0])[:, None] + offsets[None, :], 0, feats.shape[0] - 1)
    return np.einsum("twc,w->tc", feats[index], weights).astype(np.float32)


class NumpyFeatures:
    """The SER feature extractor in numpy, configured from ``preprocessor_config.json`` + ``features.npz``."""

    def __init__(self, folder: Path):
        self.settings = json.loads((folder / "preprocessor_config.json").read_text())
        matrices = np.load(folder / "features.npz")
        self.mel_basis, self.dct = matrices["mel_basis"], matrices["dct"]
        s = self.settings
        self.sampling_rate = s["sampling_rate"]
        self.speaker_adaptive = bool(s.get("speaker_adaptive"))
        self.speaker: tuple[np.ndarray, np.ndarray] | None = None  # (mean, std), set by adapt()
        win = s["win_length"] or s["n_fft"]
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
        left = (s["n_fft"] - win) // 2
        self.window = np.pad(window, (left, s["n_fft"] - win - left)).astype(np.float32)

    def adapt(self, clips: list[np.ndarray]) -> None:
        """Standardise with one speaker's feature statistics from their clips (as the torch extractor's adapt)."""
        if not clips:
            raise ValueError("adapt needs at least one clip of the speaker")
        frames = np.concatenate([self._features(c).astype(np.float64) for c in clips])
        mean = frames.mean(axis=0)
        std = np.sqrt(np.maximum(np.square(frames).mean(axis=0) - mean**2, 1e-8))
        self.speaker = (mean.astype(np.float32), std.astype(np.float32))

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        if self.speaker_adaptive and self.speaker is None:
            raise ValueError(
                "this model was trained on speaker-adapted features: adapt it to the speaker first "
                "(OnnxClassifier.adapt(clips) or hf-ser predict --adapt-on FOLDER)"
            )
        feats = self._features(wave)
        return feats if self.speaker is None else ((feats - self.speaker[0]) / self.speaker[1]).astype(np.float32)

    def _features(self, wave: np.ndarray) -> np.ndarray:
        s = self.settings
        start = int(round(s.get("offset", 0.0) * self.sampling_rate))
        wave = wave[start:]
        if s.get("max_duration"):
            size = int(round(s["max_duration"] * self.sampling_rate))
            wave = np.pad(wave[:size], (0, max(0, size - wave[:size].size)))
        n_fft, hop = s["n_fft"], s["hop_length"]
        if s.get("center", True):
            padded = np.pad(wave, (n_fft // 2, n_fft // 2))
            count = 1 + wave.size // hop
        else:
            padded = np.pad(wave, (0, max(0, n_fft - wave.size)))
            count = 1 + max(wave.size - n_fft, 0) // hop
        frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:count]
        power = np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** 2
        log_mel = 10.0 * np.log10(np.maximum(power.astype(np.float32) @ self.mel_basis, _AMIN))
        if s.get("top_db") is not None:
            log_mel = np.maximum(log_mel, log_mel.max() - s["top_db"])
        feats = log_mel @ self.dct if s.get("feature_type", "mfcc") == "mfcc" else log_mel
        mode = s.get("mean_normalization", "none")
        if mode == "all":
            feats = feats - feats.mean(axis=0, keepdims=True)
        elif mode == "level" and s.get("feature_type", "mfcc") == "mfcc":
            feats = np.concatenate([feats[:, :1] - feats[:, :1].mean(), feats[:, 1:]], axis=1)
        elif mode == "level":
            feats = feats - feats.mean()
        if s.get("prosody"):
            feats = np.concatenate([feats, self._prosody(wave, feats.shape[0])], axis=1)
        if s.get("do_normalize"):
            feats = (feats - feats.mean(axis=0)) / np.sqrt(feats.var(axis=0) + 1e-7)
        if s.get("deltas"):
            first = _delta(feats)
            feats = np.concatenate([feats, first] + ([_delta(first)] if s["deltas"] == 2 else []), axis=1)
        return feats.astype(np.float32)

    def _prosody(self, wave: np.ndarray, count: int) -> np.ndarray:
        s = self.settings
        f0, aperiodicity, energy = _yin(
            wave,
            self.sampling_rate,
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


def _yin(wave: np.ndarray, sr: int, hop: int, frame_length: int, f_min: float, f_max: float, threshold=0.1):
    """The extractor's ``_yin`` in numpy (one waveform): f0 (Hz), aperiodicity and energy per frame."""
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


class WhisperNumpyFeatures:
    """The Whisper family's log-mel in numpy (:func:`~hf_ser.models.ser.whisper_features_ser.whisper_log_mel`, the
    same function the extractor's numpy path calls), with the mel filters of the export."""

    speaker_adaptive = False

    def __init__(self, folder: Path):
        self.settings = json.loads((folder / "preprocessor_config.json").read_text())
        self.mel_filters = np.load(folder / "features.npz")["mel_filters"]
        self.sampling_rate = self.settings["sampling_rate"]

    def adapt(self, clips: list[np.ndarray]) -> None:
        raise ValueError("a Whisper-family model is not speaker-adaptive")

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        s = self.settings
        if len(wave) > s["max_duration"] * self.sampling_rate:
            raise ValueError(f"clip of {len(wave) / self.sampling_rate:.1f} s; at most {s['max_duration']} s")
        return whisper_log_mel(wave, self.mel_filters, s["n_fft"], s["hop_length"])


def features_for(folder: Path):
    """The numpy features of an export, by the extractor type it was saved with."""
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    if settings.get("feature_extractor_type") == "SERWhisperFeatureExtractor":
        return WhisperNumpyFeatures(folder)
    return NumpyFeatures(folder)


class OnnxClassifier:
    """Classify clips with an exported model; inputs as for the hf-ser pipeline (path, bytes, dict, array)."""

    def __init__(self, folder: str | Path, int8: bool = False, threads: int | None = None):
        import onnxruntime as ort

        folder = Path(folder)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        name = "model.int8.onnx" if int8 else "model.onnx"
        if not (folder / name).is_file():
            raise ValueError(f"{folder}: no {name} (export with `hf-ser export --onnx {folder}`)")
        self.session = ort.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])
        self.features = features_for(folder)
        self.labels = json.loads((folder / "labels.json").read_text())
        calibration = folder / "calibration.json"  # absent in exports made before calibration existed
        settings = json.loads(calibration.read_text()) if calibration.is_file() else {}
        self.temperature = float(settings.get("temperature") or 1.0)
        self.uncertain_below = settings.get("uncertain_below")
        self.sampling_rate = self.features.sampling_rate

    def adapt(self, clips: list) -> OnnxClassifier:
        """Adapt a speaker-adaptive model to one speaker (their clips: paths, arrays at the model's rate, …)."""
        self.features.adapt([self.waveform(c) for c in clips])
        return self

    def waveform(self, inputs) -> np.ndarray:
        return np.asarray(decode_input(inputs, self.sampling_rate), dtype=np.float32)

    def logits(self, waves: list[np.ndarray]) -> np.ndarray:
        feats = [self.features(w) for w in waves]
        longest = max(f.shape[0] for f in feats)
        batch = np.zeros((len(feats), longest, feats[0].shape[1]), np.float32)
        mask = np.zeros((len(feats), longest), np.int64)
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]], mask[i, : f.shape[0]] = f, 1
        return self.session.run(["logits"], {"input_features": batch, "attention_mask": mask})[0]

    def __call__(self, inputs, top_k: int | None = 5, batch_size: int | None = None) -> list[dict] | list[list[dict]]:
        single = not isinstance(inputs, list)
        waves = [self.waveform(x) for x in ([inputs] if single else inputs)]
        logits = self.logits(waves) / self.temperature
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        results = []
        for row in probs:
            order = np.argsort(-row)[: top_k or len(row)]
            results.append([{"label": self.labels[i], "score": float(row[i])} for i in order])
        return results[0] if single else results
