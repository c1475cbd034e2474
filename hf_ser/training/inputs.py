"""The model's training inputs for a split: cached encoder states (pretrained-encoder families) or extracted
features (standardised per speaker when the experiment says so). Shared by the runner and distillation."""

from __future__ import annotations

import json
import logging

import numpy as np
from datasets import Dataset, DatasetDict

from ..data.encoder_cache import EncoderCacheStats, cache_encoder_states, standardize_states
from ..data.features import extract_features, feature_column, standardize_per_group
from .config import Experiment

logger = logging.getLogger("hf_ser.training")


def state_encoder(model):
    """``[log-mel (frames, bins), ...] -> [encoder states (frames', layers, width), ...]`` with the model's frozen
    encoder: the clips padded into one batch (the encoder masks each clip's padding, so a clip's states are what it
    gets alone, to float rounding), each clip's states cut back to its own frames."""
    import torch

    def encode(mels: list[np.ndarray]) -> list[np.ndarray]:
        batch = np.zeros((len(mels), max(len(m) for m in mels), mels[0].shape[1]), dtype=np.float32)
        mask = np.zeros(batch.shape[:2], dtype=np.int64)
        for row, mel in enumerate(mels):
            batch[row, : len(mel)], mask[row, : len(mel)] = mel, 1
        with torch.no_grad():
            states, frames = model.encode(
                torch.from_numpy(batch).to(model.device), torch.from_numpy(mask).to(model.device)
            )
        return [states[row, : int(count)].cpu().numpy() for row, count in enumerate(frames.sum(dim=1))]

    return encode


def encoder_id(exp: Experiment, model, fe) -> str:
    """The cache identity of an encoder and its input: its weights' source and config, and the extractor's
    ``level_dbfs`` and ``trim_db`` / ``trim_margin`` when set (without them the key is what it was before those
    settings existed, so caches stay valid)."""
    name = f"{exp.encoder_source}|{model.config.encoder_provenance}|{json.dumps(model.config.whisper, sort_keys=True)}"
    level = getattr(fe, "level_dbfs", None)
    name = name if level is None else f"{name}|level_dbfs={level}"
    trim = getattr(fe, "trim_db", None)
    return name if trim is None else f"{name}|trim_db={trim}|trim_margin={fe.trim_margin}"


CONDITION_GROUP = "adaptation_group"


def with_condition_groups(data: Dataset, group: str) -> Dataset:
    """``data`` with a column that keys each row by its ``group`` and its augmented copy (``augmentation``; rows
    without the column, a test or validation split, are one condition per group): a speaker's clean clips and
    each of their copies are standardised with their own statistics, as a test speaker heard through one
    recording condition is."""
    conditions = data["augmentation"] if "augmentation" in data.column_names else ["none"] * len(data)
    keys = [f"{key}|{condition}" for key, condition in zip(data[group], conditions)]
    return data.add_column(CONDITION_GROUP, keys)


def model_inputs_of(exp: Experiment, splits: DatasetDict, fe, model, cache_dir: str | None = None) -> DatasetDict:
    """The model's inputs for every split: cached encoder states, or extracted features; adaptive variants
    standardise each split's rows with their own speaker's or corpus's statistics in that split. ``cache_dir``:
    where the encoder states go (hf-ser's cache unless given; a temporary folder for single-use clips)."""
    group = exp.data.adaptive_group
    if group and exp.data.adapt_per_condition:
        splits = DatasetDict({k: with_condition_groups(v, group) for k, v in splits.items()})
        group = CONDITION_GROUP
    if exp.family.encoder_cache:
        stats = EncoderCacheStats(skipped=[])
        encode, name = state_encoder(model), encoder_id(exp, model, fe)
        feats = cache_encoder_states(splits, fe, encode, name, cache_dir=cache_dir, stats=stats)
        logger.info(
            "encoder cache: %d clips encoded in %.1f s, %d found cached, %.0f MB on disk, %d skipped",
            stats.encoded,
            stats.seconds,
            stats.cached,
            stats.bytes / 1e6,
            len(stats.skipped),
        )
        return DatasetDict({k: standardize_states(v, group) for k, v in feats.items()}) if group else feats
    feats = extract_features(splits, fe, num_proc=exp.training.num_proc)
    if group:
        column = feature_column(fe)
        feats = DatasetDict({k: standardize_per_group(v, column, group) for k, v in feats.items()})
    return feats
