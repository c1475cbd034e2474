"""ONNX inference without torch or transformers: numpy MFCC + onnxruntime.

    from hf_ser.onnx.runtime import OnnxClassifier
    clf = OnnxClassifier("exported/")          # or OnnxClassifier("exported/", int8=True)
    clf("clip.wav")                            # [{"label": ..., "score": ...}, ...]

The features are the numpy path of the one feature definition (``hf_ser/models/ser/mfcc_features_ser.py`` for the
tiny family, ``whisper_features_ser.py`` for the Whisper family), whose torch path the extractors run; the mel
(and DCT) matrices come from the export, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..confidence import softmax
from ..models.ser.audio_ser import check_waveform, decode_input
from ..models.ser.mfcc_features_ser import features_numpy, prepared_wave, speaker_statistics
from ..models.ser.whisper_features_ser import prepared_whisper_wave, whisper_log_mel


class NumpyFeatures:
    """The SER feature extractor in numpy, configured from ``preprocessor_config.json`` + ``features.npz``."""

    def __init__(self, folder: Path):
        self.settings = json.loads((folder / "preprocessor_config.json").read_text())
        matrices = np.load(folder / "features.npz")
        self.mel_basis, self.dct = matrices["mel_basis"], matrices["dct"]
        self.sampling_rate = self.settings["sampling_rate"]
        self.speaker_adaptive = bool(self.settings.get("speaker_adaptive"))
        self.speaker: tuple[np.ndarray, np.ndarray] | None = None  # (mean, std), set by adapt()

    def adapt(self, clips: list[np.ndarray]) -> None:
        """Standardise with one speaker's feature statistics from their clips (as the torch extractor's adapt)."""
        if not clips:
            raise ValueError("adapt needs at least one clip of the speaker")
        self.speaker = speaker_statistics(self._features(c) for c in clips)

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
        remove_dc = s.get("remove_dc_offset", True)  # exports made before the field existed get it, as torch does
        wave = prepared_wave(
            wave,
            self.sampling_rate,
            s.get("offset", 0.0),
            s.get("max_duration"),
            remove_dc,
            s.get("trim_db"),
            s.get("trim_margin", 0.5),
        )
        return features_numpy(wave, s, self.mel_basis, self.dct)


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
            raise ValueError(
                f"clip of {len(wave) / self.sampling_rate:.1f} s; at most {s['max_duration']} s (where Whisper's "
                "position embeddings end): classify a longer recording over time with hf_ser.segments"
            )
        if len(wave) < s["n_fft"] // 2 + 1:  # the torch extractor's minimum (one padded STFT frame)
            raise ValueError(f"clip of {len(wave)} samples; at least {s['n_fft'] // 2 + 1} are needed")
        wave = prepared_whisper_wave(
            wave, self.sampling_rate, s.get("trim_db"), s.get("trim_margin", 0.5), s.get("level_dbfs")
        )
        return whisper_log_mel(wave, self.mel_filters, s["n_fft"], s["hop_length"])


def features_for(folder: Path):
    """The numpy features of an export, by the extractor type it was saved with."""
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    if settings.get("feature_extractor_type") == "SERWhisperFeatureExtractor":
        return WhisperNumpyFeatures(folder)
    return NumpyFeatures(folder)


def providers_for(device: str | int | None, available: list[str]) -> list:
    """onnxruntime execution providers for a transformers-style ``device`` (None, "cpu", -1; "cuda", "cuda:N", N).

    The device was ignored (every session ran on the CPU, also a Ray actor given a GPU); a GPU needs the
    onnxruntime-gpu build, whose CUDA provider is refused by name where the installed onnxruntime lacks it."""
    if device is None or device == -1 or (isinstance(device, str) and device.strip().lower() == "cpu"):
        return ["CPUExecutionProvider"]
    text = str(device).strip().lower()
    index = text.removeprefix("cuda").removeprefix(":") if text.startswith("cuda") else text
    if not index:
        index = "0"
    if not index.isdigit():
        raise ValueError(f"device={device!r}: expected 'cpu', 'cuda', 'cuda:N' or a GPU index N >= 0")
    if "CUDAExecutionProvider" not in available:
        raise ValueError(
            f"device={device!r}: this onnxruntime runs on {', '.join(available)} only; a GPU needs onnxruntime-gpu "
            "(pip install onnxruntime-gpu in place of onnxruntime), or device='cpu'"
        )
    return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]


class OnnxClassifier:
    """Classify clips with an exported model; inputs as for the hf-ser pipeline (path, bytes, dict, array).
    ``device``: as for a transformers pipeline (None or "cpu"; "cuda[:N]" with onnxruntime-gpu)."""

    def __init__(
        self, folder: str | Path, int8: bool = False, threads: int | None = None, device: str | int | None = None
    ):
        import onnxruntime as ort

        providers = providers_for(device, ort.get_available_providers())
        folder = Path(folder)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        name = "model.int8.onnx" if int8 else "model.onnx"
        if not (folder / name).is_file():
            how = f"hf-ser export --onnx {folder} --model MODEL" + (" --quantize int8" if int8 else "")
            raise ValueError(f"{folder}: no {name} (export with `{how}`)")  # int8 needs --quantize: it was unsaid
        self.session = ort.InferenceSession(str(folder / name), options, providers=providers)
        self.features = features_for(folder)
        self.labels = json.loads((folder / "labels.json").read_text())
        calibration = folder / "calibration.json"  # absent in exports made before calibration existed
        settings = json.loads(calibration.read_text()) if calibration.is_file() else {}
        self.temperature = float(settings.get("temperature") or 1.0)
        self.uncertain_below = settings.get("uncertain_below")
        self.trained_band_limited = bool(settings.get("trained_band_limited", False))
        self.sampling_rate = self.features.sampling_rate

    def adapt(self, clips: list) -> OnnxClassifier:
        """Adapt a speaker-adaptive model to one speaker (their clips: paths, arrays at the model's rate, …)."""
        self.features.adapt([self.waveform(c, i) for i, c in enumerate(clips)])
        return self

    def waveform(self, inputs, index: int = 0) -> np.ndarray:
        """A checked mono waveform at the model's rate: the torch pipeline refuses what this refuses (an empty or
        non-finite clip was answered, with NaN scores for the latter)."""
        wave = np.asarray(decode_input(inputs, self.sampling_rate, f"clip {index}"), dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(
                f"clip {index}: expected mono audio (samples,) or (samples, channels), got shape {wave.shape} (a list "
                "of inputs is a batch of clips)"
            )
        return check_waveform(wave, f"clip {index}")

    def logits(self, waves: list[np.ndarray]) -> np.ndarray:
        feats = [self.features(w) for w in waves]
        longest = max(f.shape[0] for f in feats)
        batch = np.zeros((len(feats), longest, feats[0].shape[1]), np.float32)
        mask = np.zeros((len(feats), longest), np.int64)
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]], mask[i, : f.shape[0]] = f, 1
        return self.session.run(["logits"], {"input_features": batch, "attention_mask": mask})[0]

    def __call__(self, inputs, top_k: int | None = 5, batch_size: int | None = None) -> list[dict] | list[list[dict]]:
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
            raise ValueError(f"top_k must be a whole number >= 0, or None for every label; got {top_k!r}")
        single = not isinstance(inputs, list)
        if not single and not inputs:
            return []
        waves = [self.waveform(x, i) for i, x in enumerate([inputs] if single else inputs)]
        probs = softmax(self.logits(waves), self.temperature)
        results = []
        for row in probs:
            order = np.argsort(-row)[: len(row) if top_k is None else top_k]
            results.append([{"label": self.labels[i], "score": float(row[i])} for i in order])
        return results[0] if single else results
