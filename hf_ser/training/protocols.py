"""The one registry of evaluation protocols: name → how to split a dataset, and what the numbers mean.

The CLI's choices, the runner and the model cards all read :data:`PROTOCOLS`; adding a protocol is one
:func:`register` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from datasets import Dataset, DatasetDict

from ..data.augment import augment
from ..data.emobox import emobox_folds
from ..data.splits import (
    leave_one_speaker_out,
    mark_split,
    paper_split,
    speaker_folds,
    speaker_independent_split,
    utterance_split,
)

Folds = list[tuple[str, DatasetDict]]
# (dataset, protocol settings, augmentation settings) -> [(fold name, DatasetDict)]
SplitFunction = Callable[[Dataset, "ProtocolSettings", "AugmentSettings"], Folds]


@dataclass(frozen=True)
class ProtocolSettings:
    folds: int = 5
    test_size: float = 0.2
    val_size: float = 0.1
    seed: int = 0
    test_corpus: str | None = None  # cross-corpus: the corpus tested (all of it); the others train
    training_only: tuple[str, ...] = ()  # cross-corpus: corpora that only add training clips (never tested)


@dataclass(frozen=True)
class AugmentSettings:
    """What a protocol that augments before splitting (the paper's) needs to do it."""

    config: object
    seed: int
    sampling_rate: int
    num_proc: int | None


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str  # one sentence for model cards and reports
    speaker_independent: bool
    split: SplitFunction
    augments_before_split: bool = False
    single_split: bool = False  # always one train/test split (what ``hf-ser train`` can train)
    across_corpora: bool = False  # tests one corpus with models trained on others: labels all corpora share
    numbered_folds: bool = False  # its number of folds is a setting (ProtocolSettings.folds, `evaluate --folds`)

    def folds(self, dataset: Dataset, settings: ProtocolSettings, augmentation: AugmentSettings) -> Folds:
        return self.split(dataset, settings, augmentation)


PROTOCOLS: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    PROTOCOLS[protocol.name] = protocol
    return protocol


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def _paper(dataset: Dataset, p: ProtocolSettings, a: AugmentSettings) -> Folds:
    import logging

    logging.getLogger("hf_ser.training").warning(
        "paper protocol: augmenting before a random row split puts copies of the same utterance and the same "
        "speakers in train and test, and validates on the test set; its accuracy is leaky and speaker-dependent"
    )
    augmented = augment(
        mark_split(dataset, "train"), a.config, seed=a.seed, sampling_rate=a.sampling_rate, num_proc=a.num_proc
    )
    return [("paper", paper_split(augmented, test_size=p.test_size, seed=p.seed))]


register(
    Protocol(
        "holdout",
        "Speaker-independent: the test speakers were never heard in training or validation.",
        True,
        lambda d, p, a: [("holdout", speaker_independent_split(d, p.test_size, p.val_size, p.seed))],
        single_split=True,
    )
)
register(
    Protocol(
        "speaker-kfold",
        "Speaker-independent k-fold: each speaker is tested once, by a model that never heard them.",
        True,
        lambda d, p, a: [(f"fold_{i}", s) for i, s in enumerate(speaker_folds(d, p.folds, p.seed, p.val_size))],
        numbered_folds=True,
    )
)
register(
    Protocol(
        "loso",
        "Leave-one-speaker-out: each speaker is tested by a model trained on all the others.",
        True,
        lambda d, p, a: [
            (f"speaker_{s.replace(':', '_')}", f) for s, f in leave_one_speaker_out(d, p.val_size, p.seed)
        ],
    )
)
register(
    Protocol(
        "utterance",
        "Random by utterance: the same speakers appear in training and test (speaker-dependent; optimistic).",
        False,
        lambda d, p, a: [("utterance", utterance_split(d, p.test_size, p.val_size, p.seed))],
        single_split=True,
    )
)
register(
    Protocol(
        "paper",
        "The paper's protocol (augment first, random split over rows, test used for validation): leaky and "
        "speaker-dependent; for reproduction only.",
        False,
        _paper,
        augments_before_split=True,
        single_split=True,
    )
)


def _emobox(speaker_independent: bool) -> SplitFunction:
    def split(dataset: Dataset, p: ProtocolSettings, a: AugmentSettings) -> Folds:
        folds, independent = emobox_folds(dataset, p.val_size, p.seed)
        if independent != speaker_independent:
            other = "emobox" if independent else "emobox-random"
            kind = "by speaker" if independent else "random (speakers on both sides)"
            raise ValueError(f"EmoBox's folds of this corpus are {kind}: use protocol {other!r}, which reports them so")
        return folds

    return split


register(
    Protocol(
        "emobox",
        "EmoBox's fixed folds (Interspeech 2024), where they are by speaker (RAVDESS: 6 folds of 4 actors): "
        "speaker-independent, comparable with EmoBox's published table.",
        True,
        _emobox(True),
    )
)
register(
    Protocol(
        "emobox-random",
        "EmoBox's fixed random folds (EMO-DB, TESS, ASED): the same speakers in training and test "
        "(speaker-dependent; optimistic), comparable with EmoBox's published table only.",
        False,
        _emobox(False),
    )
)


def cross_corpus_overrides(train_corpora: list[str], test_corpus: str) -> list[str]:
    """Config overrides that train on ``train_corpora`` and test on all of ``test_corpus`` with the
    ``cross-corpus`` protocol (what ``evaluate --train-corpus/--test-corpus`` and an experiment's ``cross:`` mean)."""
    corpora = ",".join([*train_corpora, test_corpus])
    return [f"data.corpus=[{corpora}]", "protocol.name=cross-corpus", f"protocol.test_corpus={test_corpus}"]


def _corpus_column(dataset: Dataset, test_corpus: str | None = None) -> np.ndarray:
    """Each row's corpus; refuses data with fewer than two corpora (or without ``test_corpus``)."""
    column = np.asarray(dataset["corpus"]) if "corpus" in dataset.column_names else np.asarray([])
    corpora = list(dict.fromkeys(column.tolist()))
    if len(corpora) < 2 or (test_corpus is not None and test_corpus not in corpora):
        wanted = f"the test corpus {test_corpus!r} and at least one other" if test_corpus else "at least two corpora"
        raise ValueError(
            f"a cross-corpus protocol needs {wanted} in data.corpus; "
            f"the data has {corpora or 'one corpus without a corpus column'}"
        )
    return column


def corpus_held_out(dataset: Dataset, test_corpus: str, val_size: float, seed: int) -> tuple[str, DatasetDict]:
    """Train on every corpus of ``dataset`` but ``test_corpus`` (``val_size`` of their speakers held out for
    validation when > 0), test on all of ``test_corpus``; the fold is named ``<train>+<train>-><test>``."""
    column = _corpus_column(dataset, test_corpus)
    rows = column == test_corpus
    source = dataset.select(np.flatnonzero(~rows))
    if val_size > 0:  # validation speakers of the training corpora, never of the tested one
        held = speaker_independent_split(source, test_size=val_size, val_size=0.0, seed=seed)
        parts = {"train": held["train"], "validation": mark_split(held["test"], "validation")}
    else:
        parts = {"train": mark_split(source, "train")}
    parts["test"] = mark_split(dataset.select(np.flatnonzero(rows)), "test")
    sources = [c for c in dict.fromkeys(column.tolist()) if c != test_corpus]
    return f"{'+'.join(sources)}->{test_corpus}", DatasetDict(parts)


def _cross_corpus(dataset: Dataset, p: ProtocolSettings, a: AugmentSettings) -> Folds:
    if not p.test_corpus:
        raise ValueError("protocol 'cross-corpus' needs protocol.test_corpus (one of data.corpus)")
    if p.test_corpus in p.training_only:
        raise ValueError(f"protocol.test_corpus {p.test_corpus!r} is also in protocol.training_only")
    return [corpus_held_out(dataset, p.test_corpus, p.val_size, p.seed)]


def _leave_one_corpus_out(dataset: Dataset, p: ProtocolSettings, a: AugmentSettings) -> Folds:
    corpora = [c for c in dict.fromkeys(_corpus_column(dataset).tolist()) if c not in p.training_only]
    return [corpus_held_out(dataset, c, p.val_size, p.seed) for c in corpora]


register(
    Protocol(
        "cross-corpus",
        "Cross-corpus: trained on the other corpora, tested on all of protocol.test_corpus (speakers, recording "
        "set-up and often language never heard), on the labels every corpus shares.",
        True,
        _cross_corpus,
        single_split=True,
        across_corpora=True,
    )
)
register(
    Protocol(
        "leave-one-corpus-out",
        "Leave one corpus out: each corpus of data.corpus in turn is tested by a model trained on the others, on "
        "the labels every corpus shares.",
        True,
        _leave_one_corpus_out,
        across_corpora=True,
    )
)
