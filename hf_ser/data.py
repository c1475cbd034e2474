"""Splits and protocols, the feature map, and the padding collator.

Every split function returns a ``DatasetDict`` whose parts carry their split name (``Dataset.split``),
so :func:`hf_ser.augment.augment` can refuse anything that is not training data.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Array2D, Dataset, DatasetDict, NamedSplit, Value
from datasets.fingerprint import Hasher

from .audio import load_audio, resample

logger = logging.getLogger("hf_ser.data")

ON_ERROR = ("raise", "skip")


# ----------------------------------------------------------------------------------------------- subsets
def subset(dataset: Dataset, indices: list[int] | np.ndarray, split: str) -> Dataset:
    """Rows ``indices`` of ``dataset`` as a new dataset marked with ``split``, with a reproducible fingerprint."""
    indices = [int(i) for i in indices]
    part = dataset.select(indices).flatten_indices()
    fingerprint = Hasher.hash((dataset._fingerprint, split, indices))
    return Dataset(part.data, info=dataset.info.copy(), split=NamedSplit(split), fingerprint=fingerprint)


def mark_split(dataset: Dataset, split: str) -> Dataset:
    """The same rows, marked as ``split`` (e.g. to declare a hand-made dataset as training data)."""
    return subset(dataset, range(len(dataset)), split)


def speaker_keys(dataset: Dataset) -> list[str]:
    """Speaker identity per row; ``corpus:speaker`` when several corpora are mixed, since ids repeat across them."""
    speakers = dataset["speaker"]
    if "corpus" in dataset.column_names and len(set(dataset["corpus"])) > 1:
        return [f"{c}:{s}" for c, s in zip(dataset["corpus"], speakers)]
    return list(speakers)


def _speakers_by_gender(dataset: Dataset, rng: np.random.Generator) -> dict[str, list[str]]:
    """Speakers grouped by (majority) gender, each group shuffled."""
    genders = dataset["gender"] if "gender" in dataset.column_names else ["unknown"] * len(dataset)
    votes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for speaker, gender in zip(speaker_keys(dataset), genders):
        votes[speaker][gender] += 1
    groups: dict[str, list[str]] = defaultdict(list)
    for speaker in sorted(votes):
        groups[max(votes[speaker], key=votes[speaker].get)].append(speaker)
    return {g: list(rng.permutation(s)) for g, s in sorted(groups.items())}


def _apportion(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """Split ``total`` across groups proportionally to their sizes (largest remainder)."""
    whole = sum(sizes.values())
    exact = {g: total * n / whole for g, n in sizes.items()}
    counts = {g: min(int(v), sizes[g]) for g, v in exact.items()}
    for g in sorted(exact, key=lambda g: exact[g] - int(exact[g]), reverse=True):
        if sum(counts.values()) >= total:
            break
        if counts[g] < sizes[g]:
            counts[g] += 1
    return counts


def _rows_of(dataset: Dataset, speakers: set[str]) -> list[int]:
    return [i for i, s in enumerate(speaker_keys(dataset)) if s in speakers]


def speaker_independent_split(
    dataset: Dataset, test_size: float = 0.2, val_size: float = 0.1, seed: int = 0
) -> DatasetDict:
    """Split by speaker into train / validation / test, balancing genders across parts where possible.

    ``test_size`` and ``val_size`` are fractions of the speakers; each non-zero part gets at least one.
    """
    if not 0 < test_size < 1 or not 0 <= val_size < 1 or test_size + val_size >= 1:
        raise ValueError(f"need 0 < test_size, 0 <= val_size and test_size + val_size < 1; got {test_size}, {val_size}")
    rng = np.random.default_rng(seed)
    groups = _speakers_by_gender(dataset, rng)
    n_speakers = sum(len(g) for g in groups.values())
    n_test = max(1, round(n_speakers * test_size))
    n_val = max(1, round(n_speakers * val_size)) if val_size > 0 else 0
    if n_test + n_val >= n_speakers:
        raise ValueError(
            f"{n_speakers} speakers cannot give {n_test} test and {n_val} validation speakers and a train set"
        )
    sizes = {g: len(s) for g, s in groups.items()}
    test_counts = _apportion(n_test, sizes)
    val_counts = _apportion(n_val, {g: sizes[g] - test_counts[g] for g in sizes})
    test, val = set(), set()
    for g, speakers in groups.items():
        test.update(speakers[: test_counts[g]])
        val.update(speakers[test_counts[g] : test_counts[g] + val_counts[g]])
    train = set(speaker_keys(dataset)) - test - val
    parts = {"train": subset(dataset, _rows_of(dataset, train), "train")}
    if n_val:
        parts["validation"] = subset(dataset, _rows_of(dataset, val), "validation")
    parts["test"] = subset(dataset, _rows_of(dataset, test), "test")
    return DatasetDict(parts)


def _with_validation(
    dataset: Dataset, train_speakers: list[str], test_speakers: set[str], val_size: float, rng: np.random.Generator
) -> DatasetDict:
    val: set[str] = set()
    if val_size > 0:
        n_val = max(1, round(len(train_speakers) * val_size))
        val = set(rng.permutation(sorted(train_speakers))[:n_val])
    parts = {"train": subset(dataset, _rows_of(dataset, set(train_speakers) - val), "train")}
    if val:
        parts["validation"] = subset(dataset, _rows_of(dataset, val), "validation")
    parts["test"] = subset(dataset, _rows_of(dataset, test_speakers), "test")
    return DatasetDict(parts)


def speaker_folds(dataset: Dataset, k: int = 5, seed: int = 0, val_size: float = 0.0) -> list[DatasetDict]:
    """``k`` folds by speaker: each speaker is tested exactly once; genders dealt round-robin across folds.

    With ``val_size > 0`` that fraction of each fold's training speakers becomes its validation set.
    """
    rng = np.random.default_rng(seed)
    groups = _speakers_by_gender(dataset, rng)
    ordered = [s for g in groups.values() for s in g]
    if not 2 <= k <= len(ordered):
        raise ValueError(f"k={k} folds need 2 <= k <= number of speakers ({len(ordered)})")
    folds: list[list[str]] = [[] for _ in range(k)]
    for i, speaker in enumerate(ordered):
        folds[i % k].append(speaker)
    return [
        _with_validation(dataset, [s for s in ordered if s not in set(fold)], set(fold), val_size, rng)
        for fold in folds
    ]


def leave_one_speaker_out(dataset: Dataset, val_size: float = 0.0, seed: int = 0) -> list[tuple[str, DatasetDict]]:
    """One fold per speaker, tested on that speaker alone: ``[(speaker, DatasetDict), ...]``."""
    rng = np.random.default_rng(seed)
    speakers = sorted(set(speaker_keys(dataset)))
    if len(speakers) < 2:
        raise ValueError("leave-one-speaker-out needs at least two speakers")
    return [(s, _with_validation(dataset, [o for o in speakers if o != s], {s}, val_size, rng)) for s in speakers]


def utterance_split(dataset: Dataset, test_size: float = 0.2, val_size: float = 0.0, seed: int = 0) -> DatasetDict:
    """Random split by utterance: the same speakers appear on every side (speaker-dependent numbers)."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_test = max(1, round(len(dataset) * test_size))
    n_val = round(len(dataset) * val_size)
    parts = {"train": subset(dataset, sorted(order[n_test + n_val :]), "train")}
    if n_val:
        parts["validation"] = subset(dataset, sorted(order[n_test : n_test + n_val]), "validation")
    parts["test"] = subset(dataset, sorted(order[:n_test]), "test")
    return DatasetDict(parts)


def paper_protocol(
    dataset: Dataset, augmentation, test_size: float = 0.2, seed: int = 42, **augment_kwargs
) -> DatasetDict:
    """The paper's evaluation, reproduced exactly; its numbers LEAK and are not a measure of generalisation.

    The notebooks of arXiv 2507.03251 augmented every clip first (original + noise + pitch + pitch&noise),
    then made a random 80/20 split over the augmented rows (``train_test_split(random_state=42)``) and used
    the test part as the validation set too. Copies of one utterance, and every speaker, sit on both sides,
    and model selection sees the test set. Use it only to show the effect; lead with speaker-independent
    protocols.
    """
    from .augment import augment

    logger.warning(
        "paper protocol: augmenting before a random row split puts copies of the same utterance and the same "
        "speakers in train and test, and validates on the test set; its accuracy is leaky and speaker-dependent"
    )
    augmented = augment(mark_split(dataset, "train"), augmentation, seed=seed, **augment_kwargs)
    order = np.random.default_rng(seed).permutation(len(augmented))
    n_test = round(len(augmented) * test_size)
    test = subset(augmented, sorted(order[:n_test]), "test")
    return DatasetDict({"train": subset(augmented, sorted(order[n_test:]), "train"), "validation": test, "test": test})


# ------------------------------------------------------------------------------------------- feature map
def decode_row(audio_path: str | None, array, rate: int | None, target_rate: int) -> np.ndarray:
    """A row's waveform at ``target_rate``: its stored ``array`` if it has one, else the decoded file."""
    if array is not None:
        wave = np.asarray(array, dtype=np.float32)
        return resample(wave, int(rate), target_rate)
    wave, _ = load_audio(audio_path, target_rate)
    return wave


def _file_stamp(paths: list[str]) -> list[tuple[str, int, int]]:
    stamps = []
    for p in sorted(set(paths)):
        try:
            st = os.stat(p)
            stamps.append((p, st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append((p, -1, -1))
    return stamps


def cache_path(kind: str, fingerprint: str, cache_dir: str | Path | None) -> str:
    """Where a derived dataset with this fingerprint is cached (``HF_SER_CACHE`` or ~/.cache/hf_ser)."""
    root = Path(cache_dir or os.environ.get("HF_SER_CACHE", Path.home() / ".cache" / "hf_ser")) / kind
    root.mkdir(parents=True, exist_ok=True)
    return str(root / f"{kind}-{fingerprint}.arrow")


def drop_failed(dataset: Dataset, column: str, what: str) -> tuple[Dataset, list[tuple[str, str]]]:
    """Remove rows whose ``column`` holds an error message; return them as ``(file, reason)`` and log them."""
    errors = dataset[column]
    failed = [(dataset[i]["audio"], errors[i]) for i, e in enumerate(errors) if e]
    if failed:
        logger.warning("%s: skipped %d files: %s", what, len(failed), "; ".join(f"{f}: {r}" for f, r in failed[:10]))
        dataset = dataset.filter(lambda e: not e, input_columns=column)
    return dataset.remove_columns(column), failed


@dataclass
class FeatureReport:
    """Rows the feature map skipped (``on_error="skip"``), per split: ``{split: [(file, reason), ...]}``."""

    skipped: dict[str, list[tuple[str, str]]]

    @property
    def total_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())


def _single_threaded_if_forked(parent_pid: int) -> None:
    """In a ``num_proc`` worker, keep torch to one thread: an OpenMP pool inherited through fork deadlocks."""
    if os.getpid() != parent_pid and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _feature_fn(feature_extractor, on_error: str):
    rate = feature_extractor.sampling_rate
    parent_pid = os.getpid()

    def compute(batch):
        _single_threaded_if_forked(parent_pid)
        n = len(batch["audio"])
        arrays = batch.get("array") or [None] * n
        rates = batch.get("sampling_rate") or [None] * n
        waves, errors = [], []
        for path, array, sr in zip(batch["audio"], arrays, rates):
            try:
                wave = decode_row(path, array, sr, rate)
                feature_extractor._as_waveform(wave, 0)  # same checks (empty, non-finite) the extractor applies
                waves.append(wave)
                errors.append("")
            except ValueError as err:
                message = str(err) if path in str(err) else f"{path}: {err}"
                if on_error == "raise":
                    raise ValueError(message) from err
                waves.append(None)
                errors.append(message)
        good = [w for w in waves if w is not None]
        feats = iter(feature_extractor(good, return_tensors=None)["input_features"]) if good else iter(())
        empty = np.zeros((0, feature_extractor.n_mfcc), dtype=np.float32)
        out = [next(feats) if w is not None else empty for w in waves]
        return {"input_features": out, "num_frames": [len(f) for f in out], "feature_error": errors}

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
    """Decode → down-mix → resample → (offset/duration crop) → MFCC, stored as ``input_features``.

    ``input_features`` is an ``Array2D((None, n_mfcc), float32)`` column, ``num_frames`` its length. Results
    are cached on disk under a fingerprint of the input dataset, the extractor's settings and the audio files'
    sizes and times, so running it again is a cache hit. ``on_error="skip"`` drops unreadable, empty or
    non-finite files and lists them (log line and the returned :class:`FeatureReport`); "raise" stops at the
    first, naming it.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
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
    features["input_features"] = Array2D(shape=(None, feature_extractor.n_mfcc), dtype="float32")
    features["num_frames"] = Value("int32")
    features["feature_error"] = Value("string")
    drop = [] if keep_audio_array else [c for c in ("array", "sampling_rate") if c in data.column_names]
    for column in drop:
        del features[column]
    fingerprint = Hasher.hash(
        (data._fingerprint, feature_extractor.to_json_string(), on_error, drop, _file_stamp(data["audio"]))
    )
    mapped = data.map(
        _feature_fn(feature_extractor, on_error),
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc if num_proc and num_proc > 1 and len(data) > batch_size else None,
        features=features,
        remove_columns=drop,
        cache_file_name=cache_path("features", fingerprint, cache_dir),
        new_fingerprint=fingerprint,
        desc="MFCC features",
    )
    mapped, failed = drop_failed(mapped, "feature_error", "feature map")
    report = FeatureReport({str(data.split or "data"): failed})
    return (mapped, report) if return_report else mapped


# ---------------------------------------------------------------------------------------------- collator
@dataclass
class SERDataCollator:
    """Pads ``input_features`` to the longest item; returns ``attention_mask`` and ``labels`` tensors.

    Args:
        padding_value: value written into padded frames (the feature extractor's ``padding_value``).
        label_column: the row key holding the class id (``labels`` after :func:`hf_ser.training` renames it).
        max_frames: optional cap; longer items are cropped (a random window when ``random_crop``).
    """

    padding_value: float = 0.0
    label_column: str = "labels"
    max_frames: int | None = None
    random_crop: bool = False

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        feats = [torch.as_tensor(np.asarray(r["input_features"], dtype=np.float32)) for r in rows]
        if self.max_frames:
            feats = [self._crop(f) for f in feats]
        lengths = [f.shape[0] for f in feats]
        if min(lengths) == 0:
            raise ValueError("a row has no feature frames (was a failed file left in the dataset?)")
        batch = torch.full((len(feats), max(lengths), feats[0].shape[1]), self.padding_value, dtype=torch.float32)
        mask = torch.zeros(len(feats), max(lengths), dtype=torch.int32)
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = f
            mask[i, : f.shape[0]] = 1
        out = {"input_features": batch, "attention_mask": mask}
        if self.label_column in rows[0]:
            out["labels"] = torch.tensor([int(r[self.label_column]) for r in rows], dtype=torch.long)
        return out

    def _crop(self, f: torch.Tensor) -> torch.Tensor:
        if f.shape[0] <= self.max_frames:
            return f
        start = int(torch.randint(0, f.shape[0] - self.max_frames + 1, ())) if self.random_crop else 0
        return f[start : start + self.max_frames]
