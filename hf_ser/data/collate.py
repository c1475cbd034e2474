"""Batching: the padding collator, and in-memory training features with random crops and masking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset

from .encoder_cache import STATES_COLUMN, load_states


@dataclass
class SERDataCollator:
    """Pads ``input_name`` (frames first, any trailing shape) to the longest item; returns ``attention_mask`` and
    ``labels`` tensors.

    Args:
        padding_value: value written into padded frames (the feature extractor's ``padding_value``).
        label_column: the row key holding the class id.
        input_name: the row key (and model input) holding the frames: ``input_features``, or ``encoder_states``
            for a family trained from cached encoder states.
    """

    padding_value: float = 0.0
    label_column: str = "labels"
    input_name: str = "input_features"

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        feats = [torch.as_tensor(np.asarray(r[self.input_name], dtype=np.float32)) for r in rows]
        lengths = [f.shape[0] for f in feats]
        if min(lengths) == 0:
            raise ValueError("a row has no feature frames (was a failed file left in the dataset?)")
        batch = torch.full((len(feats), max(lengths), *feats[0].shape[1:]), self.padding_value, dtype=torch.float32)
        mask = torch.zeros(len(feats), max(lengths), dtype=torch.int32)
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = f
            mask[i, : f.shape[0]] = 1
        out = {self.input_name: batch, "attention_mask": mask}
        if self.label_column in rows[0]:
            out["labels"] = torch.tensor([int(r[self.label_column]) for r in rows], dtype=torch.long)
        return out


class InMemoryFeatures(torch.utils.data.Dataset):
    """A feature dataset held in memory as tensors: no Arrow decoding per step, which made epochs slow.

    For training, each access can take a random crop of ``max_frames`` frames and apply SpecAugment-style
    masking: ``time_masks`` spans of up to ``time_mask_width`` frames and ``feature_masks`` bands of up to
    ``feature_mask_width`` coefficients, each replaced by the utterance's mean (a zero would be an extreme
    value for raw MFCCs). Randomness comes from torch's generator, which the Trainer seeds.
    """

    def __init__(
        self,
        dataset: Dataset,
        column: str = "input_features",
        label_column: str = "emotion",
        max_frames: int | None = None,
        time_masks: int = 0,
        time_mask_width: int = 20,
        feature_masks: int = 0,
        feature_mask_width: int = 4,
        frequency_warp: float = 0.0,
        random_eq_db: float = 0.0,
        input_name: str = "input_features",
    ):
        if random_eq_db < 0:
            raise ValueError(f"random_eq_db must be >= 0, got {random_eq_db}")
        if not 0.0 <= frequency_warp < 1.0:
            raise ValueError(f"frequency_warp must be in [0, 1), got {frequency_warp}")
        table = dataset.with_format("numpy")
        if column == STATES_COLUMN:  # cache file names: the states stay float16 in memory (half the size)
            self.features = [torch.from_numpy(load_states(str(f))) for f in table[column]]
        else:
            self.features = [torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in table[column]]
        self.input_name = input_name
        self.labels = [int(v) for v in table[label_column]]
        self.max_frames = max_frames
        self.time_masks, self.time_mask_width = time_masks, time_mask_width
        self.feature_masks, self.feature_mask_width = feature_masks, feature_mask_width
        self.frequency_warp = frequency_warp
        self.random_eq_db = random_eq_db

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        feats = self.features[index]
        if self.max_frames and feats.shape[0] > self.max_frames:
            start = int(torch.randint(0, feats.shape[0] - self.max_frames + 1, ()))
            feats = feats[start : start + self.max_frames]
        if self.frequency_warp:
            factor = 1.0 + self.frequency_warp * (2 * float(torch.rand(())) - 1)
            feats = warp_feature_axis(feats, factor)
        if self.random_eq_db:
            feats = feats + random_eq_curve(feats.shape[1], self.random_eq_db)
        if self.time_masks or self.feature_masks:
            feats = self._mask(feats.clone())
        return {self.input_name: feats, "labels": self.labels[index]}

    def _mask(self, feats: torch.Tensor) -> torch.Tensor:
        mean = feats.mean(dim=0)
        frames, dims = feats.shape[0], feats.shape[-1]
        for _ in range(self.time_masks):
            width = int(torch.randint(0, min(self.time_mask_width, frames // 4) + 1, ()))
            start = int(torch.randint(0, frames - width + 1, ()))
            feats[start : start + width] = mean
        for _ in range(self.feature_masks):
            width = int(torch.randint(0, min(self.feature_mask_width, dims) + 1, ()))
            start = int(torch.randint(0, dims - width + 1, ()))
            feats[..., start : start + width] = mean[..., start : start + width]
        return feats


def warp_feature_axis(feats: torch.Tensor, factor: float) -> torch.Tensor:
    """Resample the feature (frequency) axis of ``(frames, dims)`` by ``factor``: output bin ``j`` reads input
    position ``j / factor`` (linear interpolation, edge bins repeated). ``factor > 1`` moves content up."""
    dims = feats.shape[1]
    source = (torch.arange(dims, dtype=torch.float32) / factor).clamp(0, dims - 1)
    low = source.floor().long()
    high = (low + 1).clamp(max=dims - 1)
    frac = source - low
    return feats[:, low] * (1 - frac) + feats[:, high] * frac


def random_eq_curve(bands: int, max_db: float, components: int = 4) -> torch.Tensor:
    """A random smooth gain curve over ``bands`` (dB): a sum of the first ``components`` cosines over the band
    axis (the first is a spectral tilt), with zero mean and a peak of at most ``max_db``."""
    x = torch.linspace(0, 1, bands)
    weights = 2 * torch.rand(components) - 1
    curve = sum(w * torch.cos(torch.pi * (k + 1) * x) for k, w in enumerate(weights))
    curve = curve - curve.mean()
    return curve * (max_db * float(torch.rand(())) / curve.abs().max().clamp(min=1e-6))
