"""Splits by speaker, by utterance and the paper's: pure functions of a dataset and a seed.

Every split function returns a ``DatasetDict`` whose parts carry their split name (``Dataset.split``),
so :func:`hf_ser.data.augment.augment` can refuse anything that is not training data.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from datasets import Dataset, DatasetDict, NamedSplit
from datasets.fingerprint import Hasher

from .cache import fingerprint


# ----------------------------------------------------------------------------------------------- subsets
def subset(dataset: Dataset, indices: list[int] | np.ndarray, split: str) -> Dataset:
    """Rows ``indices`` of ``dataset`` as a new dataset marked with ``split``, with a reproducible fingerprint."""
    indices = [int(i) for i in indices]
    part = _quietly(lambda: dataset.select(indices).flatten_indices())
    key = Hasher.hash((fingerprint(dataset), split, indices))
    return Dataset(part.data, info=dataset.info.copy(), split=NamedSplit(split), fingerprint=key)


def _quietly(make):
    """``make()`` without datasets' progress bar: a split is a few index copies, and each printed a "Flattening the
    indices" bar (15 lines for one 5-fold `hf-ser evaluate`, before any training). The caller's setting is kept."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        return make()
    finally:
        if not was_disabled:
            enable_progress_bars()


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


def label_stratified_split(dataset: Dataset, test_size: float = 0.2, seed: int = 0) -> DatasetDict:
    """Random split by utterance within each label: every label with two clips or more keeps at least one on each
    side (a plain random split of a few clips could leave a label without a training clip). For a user's own
    clips (``hf-ser finetune``); the ``utterance`` protocol keeps its plain split, on which its results were made."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(dataset["emotion"])
    test: list[int] = []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        if len(rows) >= 2:
            test += rows[: min(len(rows) - 1, max(1, round(len(rows) * test_size)))].tolist()
    train = sorted(set(range(len(dataset))) - set(test))
    return DatasetDict({"train": subset(dataset, train, "train"), "test": subset(dataset, sorted(test), "test")})


def paper_split(dataset: Dataset, test_size: float = 0.2, seed: int = 42) -> DatasetDict:
    """The paper's split of already augmented rows: random over rows, the test part doubling as validation.

    The notebooks of arXiv 2507.03251 augmented every clip first (original + noise + pitch + pitch&noise),
    then made a random 80/20 split over the augmented rows and validated on the test part. Copies of one
    utterance, and every speaker, sit on both sides, and model selection sees the test set: the numbers
    LEAK. Use it only to show the effect (``hf_ser.training.protocols`` runs the augmentation first).
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_test = round(len(dataset) * test_size)
    test = subset(dataset, sorted(order[:n_test]), "test")
    return DatasetDict({"train": subset(dataset, sorted(order[n_test:]), "train"), "validation": test, "test": test})
