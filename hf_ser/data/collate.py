"""Batching: the padding collator, and in-memory training features with random crops and masking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from pydantic import BaseModel, ConfigDict, Field

from .encoder_cache import STATES_COLUMN, STATISTICS_COLUMN, load_statistics, map_states

CONSISTENCY_GROUP = "consistency_group"  # a batch key: rows with one value are one clip and its augmented copies
CONSISTENCY_ORIGINAL = "consistency_original"  # a batch key: True on the rows that are an original clip, not a copy
SOFT_LABELS = "soft_labels"  # a training column of class-probability targets (distillation) used instead of labels


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
        # tensors (float16 encoder states included) are copied straight into the float32 batch: one conversion
        feats = [
            f if isinstance(f, torch.Tensor) else torch.as_tensor(np.asarray(f, dtype=np.float32))
            for f in (r[self.input_name] for r in rows)
        ]
        lengths = [f.shape[0] for f in feats]
        if min(lengths) == 0:
            raise ValueError("a row has no feature frames (was a failed file left in the dataset?)")
        batch = torch.full((len(feats), max(lengths), *feats[0].shape[1:]), self.padding_value, dtype=torch.float32)
        mask = torch.zeros(len(feats), max(lengths), dtype=torch.int32)
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = f
            mask[i, : f.shape[0]] = 1
        out = {self.input_name: batch, "attention_mask": mask}
        if CONSISTENCY_GROUP in rows[0]:  # which rows are one clip and its copies (consistency training)
            out[CONSISTENCY_GROUP] = torch.tensor([int(r[CONSISTENCY_GROUP]) for r in rows], dtype=torch.long)
        if CONSISTENCY_ORIGINAL in rows[0]:
            out[CONSISTENCY_ORIGINAL] = torch.tensor([bool(r[CONSISTENCY_ORIGINAL]) for r in rows])
        if self.label_column in rows[0]:
            labels = [r[self.label_column] for r in rows]
            if np.ndim(labels[0]) == 1:  # class probabilities (distillation targets)
                out["labels"] = torch.stack([torch.as_tensor(np.asarray(x, dtype=np.float32)) for x in labels])
            else:
                out["labels"] = torch.tensor([int(x) for x in labels], dtype=torch.long)
        return out


class ItemAugmentation(BaseModel):
    """What happens to each training item at each step: a random crop and SpecAugment-style masking, and for
    log-mel features a frequency warp and a random EQ curve. The one declaration of these options: the experiment
    config's ``training`` section is an ``ItemAugmentation`` (same keys), and so is what ``fit`` receives."""

    model_config = ConfigDict(extra="forbid")

    max_train_frames: int | None = Field(None, ge=1)  # random crop of each training item per step (frames)
    time_masks: int = Field(0, ge=0)  # masked spans of frames per item, each replaced by the item's mean
    time_mask_width: int = Field(20, ge=0)  # widest time mask (frames; at most a quarter of the item)
    feature_masks: int = Field(0, ge=0)  # masked bands of feature coefficients per item
    feature_mask_width: int = Field(4, ge=0)  # widest feature mask (coefficients)
    frequency_warp: float = Field(0.0, ge=0, lt=1)  # log-mel only: random stretch of the frequency axis, ±w
    random_eq_db: float = Field(0.0, ge=0)  # log-mel only: random smooth gain curve over the bands, peak ≤ dB


class InMemoryFeatures(torch.utils.data.Dataset):
    """A feature dataset held in memory as tensors: no Arrow decoding per step, which made epochs slow. Cached
    encoder states are memory-mapped from their files instead (the operating system pages them in and may drop them):
    held in memory, the bundled default's training set (five copies of three corpora) took 23.5 GB of a 24 GB machine.

    For training, each access applies ``augmentation`` (:class:`ItemAugmentation`): a random crop, then
    SpecAugment-style masks, each replaced by the utterance's mean (a zero would be an extreme value for raw
    MFCCs). Randomness comes from torch's generator, which the Trainer seeds. A ``soft_labels`` column
    (distillation targets, one probability row per item) replaces the class ids as labels.
    """

    def __init__(
        self,
        dataset: Dataset,
        column: str = "input_features",
        label_column: str = "emotion",
        augmentation: ItemAugmentation | None = None,
        input_name: str = "input_features",
    ):
        table = dataset.with_format("numpy")
        if column == STATES_COLUMN:  # cache file names: the states stay float16 (half the size), memory-mapped
            self.features = [map_states(str(f)) for f in table[column]]
            if STATISTICS_COLUMN in dataset.column_names:  # adaptive variants: standardised per speaker or corpus
                stats = {f: load_statistics(f) for f in set(dataset[STATISTICS_COLUMN])}
                self.features = [
                    torch.from_numpy(((x.numpy().astype(np.float32) - stats[f][0]) / stats[f][1]).astype(np.float16))
                    for x, f in zip(self.features, dataset[STATISTICS_COLUMN])
                ]
        else:
            self.features = [torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in table[column]]
        self.input_name = input_name
        if SOFT_LABELS in dataset.column_names:  # distillation: the teacher's probabilities are the targets
            self.labels = [torch.from_numpy(np.asarray(v, dtype=np.float32)) for v in table[SOFT_LABELS]]
        else:
            self.labels = [int(v) for v in table[label_column]]
        self.augmentation = augmentation or ItemAugmentation()
        self.groups: list[int] | None = None  # per row, its clip (consistency training; set by the trainer)
        self.originals: list[bool] | None = None  # per row, whether it is the clip itself (anchored consistency)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        feats, a = self.features[index], self.augmentation
        if a.max_train_frames and feats.shape[0] > a.max_train_frames:
            start = int(torch.randint(0, feats.shape[0] - a.max_train_frames + 1, ()))
            feats = feats[start : start + a.max_train_frames]
        if a.frequency_warp:
            factor = 1.0 + a.frequency_warp * (2 * float(torch.rand(())) - 1)
            feats = warp_feature_axis(feats, factor)
        if a.random_eq_db:
            feats = feats + random_eq_curve(feats.shape[1], a.random_eq_db)
        if a.time_masks or a.feature_masks:
            feats = self._mask(feats.clone())
        item = {self.input_name: feats, "labels": self.labels[index]}
        if self.groups is not None:
            item[CONSISTENCY_GROUP] = self.groups[index]
        if self.originals is not None:
            item[CONSISTENCY_ORIGINAL] = self.originals[index]
        return item

    def _mask(self, feats: torch.Tensor) -> torch.Tensor:
        mean, a = feats.mean(dim=0), self.augmentation
        frames, dims = feats.shape[0], feats.shape[-1]
        for _ in range(a.time_masks):
            width = int(torch.randint(0, min(a.time_mask_width, frames // 4) + 1, ()))
            start = int(torch.randint(0, frames - width + 1, ()))
            feats[start : start + width] = mean
        for _ in range(a.feature_masks):
            width = int(torch.randint(0, min(a.feature_mask_width, dims) + 1, ()))
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
