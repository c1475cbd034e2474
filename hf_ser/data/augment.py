"""Waveform augmentation of a training split, built on audiomentations.

A configuration lists *copies*; each copy is a chain of transforms applied to every training clip and
becomes one new row, which records its ``source_id`` (the utterance it came from) and ``augmentation``.

    augmentation:
      copies:
        - [{name: AddGaussianSNR, min_snr_db: 15, max_snr_db: 30, p: 1.0}]
        - [{name: PitchShift, min_semitones: -2, max_semitones: 2, p: 1.0}]

A step is any audiomentations waveform transform, named by its class, with its own documented
parameters and defaults; ``PeakRelativeGaussianNoise`` (the paper's noise) is ours.

Every copy is seeded from (seed, utterance_id, copy index), so the same seed gives byte-identical audio
whatever the batch size or ``num_proc``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import audiomentations as am
import numpy as np
from audiomentations.core.transforms_interface import BaseWaveformTransform
from datasets import Dataset, Sequence, Value

from ..audio import AudioDecodeError, decode_row
from .cache import cached_map, check_on_error
from .corruptions import TRANSFORMS as CORRUPTIONS
from .corruptions import babble_sources


class PeakRelativeGaussianNoise(BaseWaveformTransform):
    """The paper's noise: ``x + 0.035 * U(0, 1) * max(x) * N(0, 1)`` (amplitude relative to the peak).

    audiomentations' AddGaussianNoise takes an absolute amplitude and AddGaussianSNR a target SNR; neither
    scales with the clip's peak as the paper's notebooks did, hence this small transform.
    """

    supports_multichannel = True

    def __init__(self, max_factor: float = 0.035, p: float = 1.0):
        super().__init__(p)
        if not 0 < max_factor <= 1:
            raise ValueError(f"PeakRelativeGaussianNoise: max_factor must be in (0, 1], got {max_factor}")
        self.max_factor = max_factor

    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        super().randomize_parameters(samples, sample_rate)
        if self.parameters["should_apply"]:
            self.parameters["factor"] = self.max_factor * random.uniform(0.0, 1.0)

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        amplitude = self.parameters["factor"] * float(np.max(samples))
        return (samples + amplitude * np.random.normal(size=samples.shape)).astype(np.float32)


# ours: the paper's noise and the recording conditions of the corrupted test suite (hf_ser.data.corruptions)
OUR_TRANSFORMS: dict[str, type[BaseWaveformTransform]] = {
    "PeakRelativeGaussianNoise": PeakRelativeGaussianNoise,
    **CORRUPTIONS,
}


def transform_class(name: str) -> type[BaseWaveformTransform]:
    """An audiomentations waveform transform by its class name, or one of :data:`OUR_TRANSFORMS`."""
    cls = OUR_TRANSFORMS.get(name) or getattr(am, name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseWaveformTransform)):
        raise ValueError(
            f"unknown augmentation {name!r}: expected an audiomentations waveform transform class name "
            f"(e.g. AddGaussianSNR, PitchShift, Gain, TimeStretch, Shift, SevenBandParametricEQ) or one of "
            f"{', '.join(OUR_TRANSFORMS)}"
        )
    return cls


def build_transform(spec: dict) -> BaseWaveformTransform:
    """One transform from ``{"name": ClassName, **its own parameters}``; audiomentations' defaults apply
    (including ``p=0.5``: set ``p: 1.0`` for a copy that is always transformed). Errors name the step."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"an augmentation step must be a mapping with a 'name', got {spec!r}")
    params = dict(spec)
    cls = transform_class(params.pop("name"))
    try:
        return cls(**params)
    except (AssertionError, TypeError, ValueError) as err:
        raise ValueError(f"augmentation {spec['name']!r}: invalid parameters {params} ({err or 'rejected'})") from err


@dataclass
class AugmentConfig:
    """Which augmented copies to make of each training clip, and whether to keep the original."""

    copies: list[list[dict]] = field(default_factory=list)
    keep_original: bool = True

    @classmethod
    def from_value(cls, value) -> AugmentConfig:
        if isinstance(value, cls):
            return value
        if isinstance(value, list):
            value = {"copies": value}
        if not isinstance(value, dict):
            raise ValueError(f"augmentation config must be a mapping or a list of copies, got {type(value).__name__}")
        unknown = set(value) - {"copies", "keep_original"}
        if unknown:
            raise ValueError(f"augmentation: unknown keys {sorted(unknown)} (expected copies, keep_original)")
        copies = [c if isinstance(c, list) else [c] for c in value.get("copies", [])]
        config = cls(copies=copies, keep_original=bool(value.get("keep_original", True)))
        return config.validate()

    def validate(self) -> AugmentConfig:
        """Build every step once, so a bad step fails here and not inside a worker process (silent stand-ins
        for the babble clips that :func:`augment` finds in the training split)."""
        self.pipelines(babble=[np.zeros(1, np.float32)] * 64 if self.needs_babble() else None)
        return self

    def includes(self, name: str) -> bool:
        """Whether any copy has a step of this transform class (e.g. ``TelephoneBand``)."""
        return any(step.get("name") == name for copy in self.copies for step in copy)

    def needs_babble(self) -> bool:
        """Whether a step mixes babble without clips of its own (it then takes the training split's speakers)."""
        return any(_is_open_babble(step) for copy in self.copies for step in copy)

    def pipelines(self, babble: list[np.ndarray] | None = None) -> list[am.Compose]:
        """The copies' transform chains; ``babble`` feeds the babble steps that name no clips of their own."""

        def step(spec: dict) -> dict:
            return {**spec, "babble_sources": babble} if babble is not None and _is_open_babble(spec) else spec

        return [am.Compose([build_transform(step(s)) for s in copy], p=1.0, shuffle=False) for copy in self.copies]

    def names(self) -> list[str]:
        return ["+".join(s["name"] for s in copy) for copy in self.copies]


def _is_open_babble(spec: dict) -> bool:
    return spec.get("name") == "AddNoise" and spec.get("kind") == "babble" and not spec.get("babble_sources")


def copy_seed(seed: int, utterance_id: str, copy_index: int) -> int:
    digest = hashlib.sha256(f"{seed}/{utterance_id}/{copy_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _augment_fn(config: AugmentConfig, seed: int, sampling_rate: int | None, on_error: str, babble=None):
    pipelines = config.pipelines(babble)
    names = config.names()

    def apply(batch):
        added = ("array", "sampling_rate", "source_id", "augmentation", "augment_error")
        out: dict[str, list] = {k: [] for k in [*batch.keys(), *added]}
        n = len(batch["audio"])
        for i in range(n):
            row = {k: v[i] for k, v in batch.items()}
            try:
                rate = sampling_rate or _native_rate(row["audio"])
                wave = decode_row(row["audio"], row.get("array"), row.get("sampling_rate"), rate)
                error = ""
            except (AudioDecodeError, ValueError) as err:
                if on_error == "raise":
                    raise
                wave, rate, error = np.zeros(0, np.float32), sampling_rate or 0, str(err)
            variants = [("none", wave)] if config.keep_original or error else []
            if not error:
                for k, (name, pipeline) in enumerate(zip(names, pipelines)):
                    random.seed(copy_seed(seed, row["utterance_id"], k))
                    np.random.seed(copy_seed(seed, row["utterance_id"], k))
                    variants.append((name, pipeline(samples=wave, sample_rate=rate).astype(np.float32)))
            for k, (name, audio) in enumerate(variants):
                for key, value in row.items():
                    if key not in added:
                        out[key].append(value)
                if name != "none":
                    out["utterance_id"][-1] = f"{row['utterance_id']}#aug{k if config.keep_original else k + 1}"
                out["array"].append(audio)
                out["sampling_rate"].append(rate)
                out["source_id"].append(row.get("source_id") or row["utterance_id"])
                out["augmentation"].append(name)
                out["augment_error"].append(error)
        return out

    return apply


def _native_rate(path: str) -> int:
    import soundfile as sf

    try:
        return sf.info(path).samplerate
    except Exception as err:
        raise AudioDecodeError(f"{path}: cannot read audio header ({err})") from err


def augment(
    dataset: Dataset,
    config,
    seed: int = 0,
    sampling_rate: int | None = None,
    num_proc: int | None = None,
    batch_size: int = 8,
    on_error: str = "raise",
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Decode every training clip and add its augmented copies (see the module docstring).

    Returns the rows with the decoded waveform in ``array`` (at ``sampling_rate``, or each file's own rate),
    plus ``source_id`` and ``augmentation`` (``"none"`` for the originals). Only a split marked as training
    is accepted: augmenting validation or test data would leak. Cached on disk by fingerprint.
    """
    split = str(dataset.split) if dataset.split is not None else None
    if split is None or not split.startswith("train"):
        raise ValueError(
            f"augment() only takes a training split, got split={split!r}; augmenting validation or test data "
            "leaks copies of test utterances into training. Use the 'train' part of a split function, or "
            "hf_ser.data.splits.mark_split(ds, 'train') for a dataset that really is training data."
        )
    check_on_error(on_error)
    config = AugmentConfig.from_value(config)
    babble = None
    if config.needs_babble():  # the split's own speakers, their last clips (the test suite mixes their first)
        if sampling_rate is None:
            raise ValueError("augmentation: a babble copy mixes decoded clips, so augment() needs a sampling_rate")
        babble = babble_sources(dataset, sampling_rate, last=True)
    features = dataset.features.copy()
    features["array"] = Sequence(Value("float32"))
    features["sampling_rate"] = Value("int32")
    for column in ("source_id", "augmentation", "augment_error"):
        features[column] = Value("string")
    augmented, _ = cached_map(
        dataset,
        _augment_fn(config, seed, sampling_rate, on_error, babble),
        kind="augment",
        settings=(config.copies, config.keep_original, seed, sampling_rate, on_error),
        features=features,
        error_column="augment_error",
        remove_columns=dataset.column_names,
        batch_size=batch_size,
        num_proc=num_proc,
        cache_dir=cache_dir,
    )
    return augmented
