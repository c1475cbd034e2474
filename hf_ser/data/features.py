"""The feature map: decode → down-mix → resample → feature extractor, cached, failures reported.

Works with any ``SequenceFeatureExtractor``: the output column is the extractor's first model input name
(``input_features`` for :class:`~hf_ser.models.ser.SERFeatureExtractor`), with ``feature_size`` values
per frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Array2D, Dataset, DatasetDict, Value

from ..audio import AudioDecodeError, decode_row
from ..models.ser.mfcc_features_ser import speaker_statistics as one_speaker_statistics
from .cache import cached_map, check_on_error, single_threaded_if_forked


@dataclass
class FeatureReport:
    """Rows the feature map skipped (``on_error="skip"``), per split: ``{split: [(file, reason), ...]}``."""

    skipped: dict[str, list[tuple[str, str]]]

    @property
    def total_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())


def feature_column(feature_extractor) -> str:
    """Name of the column the feature map writes (and the model reads)."""
    return feature_extractor.model_input_names[0]


def _feature_fn(feature_extractor, on_error: str):
    rate = feature_extractor.sampling_rate
    column = feature_column(feature_extractor)
    parent_pid = os.getpid()

    def compute(batch):
        single_threaded_if_forked(parent_pid)
        n = len(batch["audio"])
        arrays = batch.get("array") or [None] * n
        rates = batch.get("sampling_rate") or [None] * n
        waves, errors = [], []
        for path, array, sr in zip(batch["audio"], arrays, rates):
            try:
                waves.append(decode_row(path, array, sr, rate))
                errors.append("")
            except (AudioDecodeError, ValueError) as err:
                message = str(err) if path in str(err) else f"{path}: {err}"
                if on_error == "raise":
                    raise AudioDecodeError(message) from err
                waves.append(None)
                errors.append(message)
        good = [w for w in waves if w is not None]
        feats = iter(feature_extractor(good, return_tensors=None)[column]) if good else iter(())
        empty = np.zeros((0, feature_extractor.feature_size), dtype=np.float32)
        out = [next(feats) if w is not None else empty for w in waves]
        return {column: out, "num_frames": [len(f) for f in out], "feature_error": errors}

    return compute


def extract_features(
    data: Dataset | DatasetDict,
    feature_extractor,
    batch_size: int = 32,
    num_proc: int | None = None,
    on_error: str = "raise",
    cache_dir: str | Path | None = None,
    keep_audio_array: bool = False,
    return_report: bool = False,
):
    """Decode → down-mix → resample → feature extractor, stored in the extractor's input column.

    The column is an ``Array2D((None, feature_size), float32)``, ``num_frames`` its length. Results are
    cached on disk under a fingerprint of the input dataset, the extractor's settings and the audio files'
    sizes and times, so running it again is a cache hit. ``on_error="skip"`` drops unreadable, empty or
    non-finite files and lists them (log line and the returned :class:`FeatureReport`); "raise" stops at the
    first, naming it.
    """
    check_on_error(on_error)
    if isinstance(data, DatasetDict):
        results = {
            k: extract_features(
                v, feature_extractor, batch_size, num_proc, on_error, cache_dir, keep_audio_array, return_report=True
            )
            for k, v in data.items()
        }
        out = DatasetDict({k: ds for k, (ds, _) in results.items()})
        report = FeatureReport({k: r.skipped.get(k, []) for k, (_, r) in results.items()})
        return (out, report) if return_report else out

    features = data.features.copy()
    features[feature_column(feature_extractor)] = Array2D(shape=(None, feature_extractor.feature_size), dtype="float32")
    features["num_frames"] = Value("int32")
    features["feature_error"] = Value("string")
    drop = [] if keep_audio_array else [c for c in ("array", "sampling_rate") if c in data.column_names]
    for column in drop:
        del features[column]
    mapped, failed = cached_map(
        data,
        _feature_fn(feature_extractor, on_error),
        kind="features",
        settings=(feature_extractor.to_json_string(), on_error, drop),
        features=features,
        error_column="feature_error",
        remove_columns=drop,
        batch_size=batch_size,
        num_proc=num_proc,
        cache_dir=cache_dir,
    )
    report = FeatureReport({str(data.split or "data"): failed})
    return (mapped, report) if return_report else mapped


def group_statistics(dataset: Dataset, column: str, group: str = "speaker") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per value of ``group`` (a speaker, or a corpus), the mean and standard deviation of every feature over all
    frames of its clips (the one definition in the remote code, which the extractor's and the ONNX runtime's
    ``adapt`` use too)."""
    indices: dict[str, list[int]] = {}
    for index, key in enumerate(dataset[group]):
        indices.setdefault(str(key), []).append(index)
    frames = dataset.select_columns([column]).with_format("numpy")
    # one clip in memory at a time: the statistics are running sums over each group's rows
    return {s: one_speaker_statistics(frames[i][column] for i in rows) for s, rows in indices.items()}


def standardize_per_group(dataset: Dataset, column: str, group: str = "speaker") -> Dataset:
    """Adaptive features: each speaker's (or corpus's) frames standardised with that group's own statistics.

    Uses only the group's (unlabelled) clips, so a test speaker or corpus can be adapted to from its recordings
    without labels. Results from it are adaptive and are reported apart from speaker-independent ones.
    """
    stats = group_statistics(dataset, column, group)

    def apply(batch):
        out = []
        for frames, key in zip(batch[column], batch[group]):
            mean, std = stats[str(key)]
            out.append((np.asarray(frames, dtype=np.float32) - mean) / std)
        return {column: out}

    return dataset.map(apply, batched=True, features=dataset.features, desc=f"per-{group} standardisation")
