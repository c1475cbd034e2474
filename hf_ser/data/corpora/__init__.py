"""Corpus loaders: one module per corpus, a registry by name, and the unified emotion taxonomy.

from hf_ser.data.corpora import load_corpus, load_corpora
ds = load_corpus("ravdess", "/data/RAVDESS")

Adding a corpus is one new module in this folder: a :class:`Corpus` subclass with a ``name`` registers
itself (every module here is imported below), with its naming rule, labels, unified mapping and facts.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from datasets import Dataset, concatenate_datasets

from .base import COMMON_COLUMNS, CORPORA, Corpus, CorpusFacts, CorpusLayoutError, LoadReport
from .taxonomy import UNIFIED_EMOTIONS, unified_label, unified_label_set, unify_labels

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "taxonomy"):
        importlib.import_module(f"{__name__}.{_module.name}")


def get_corpus(name: str) -> Corpus:
    try:
        return CORPORA[name]()
    except KeyError as err:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}") from err


def load_corpus(name: str, data_dir: str | Path, strict: bool = False, return_report: bool = False):
    """Load one corpus as a ``datasets.Dataset`` (one row per utterance, ``audio`` = file path).

    Files that match no naming rule are counted in the report (log line and ``dataset.info.description``);
    ``strict=True`` makes them an error. ``return_report=True`` returns ``(dataset, LoadReport)``.
    """
    dataset, report = get_corpus(name).load(data_dir, strict=strict)
    return (dataset, report) if return_report else dataset


def load_corpora(
    names: list[str],
    data_dirs: dict[str, str | Path] | list[str | Path],
    merge_calm: bool = False,
    common_only: bool = False,
    strict: bool = False,
    labels: list[str] | None = None,
) -> Dataset:
    """Load several corpora with unified labels and concatenate them (common columns, ``corpus`` kept).

    ``labels`` restricts the unified label set (default: every label of the chosen corpora, or only the
    common ones with ``common_only``); rows outside it are left out and logged.
    """
    dirs = dict(zip(names, data_dirs)) if isinstance(data_dirs, (list, tuple)) else dict(data_dirs)
    missing = [n for n in names if n not in dirs]
    if missing:
        raise ValueError(f"no data folder given for {missing}")
    labels = labels or unified_label_set(names, merge_calm=merge_calm, common_only=common_only)
    parts = []
    for name in names:
        ds = load_corpus(name, dirs[name], strict=strict)
        ds = unify_labels(ds, name, merge_calm=merge_calm, labels=labels)
        parts.append(ds.select_columns(list(COMMON_COLUMNS)))
    return concatenate_datasets(parts)


__all__ = [
    "CORPORA",
    "UNIFIED_EMOTIONS",
    "Corpus",
    "CorpusFacts",
    "CorpusLayoutError",
    "LoadReport",
    "get_corpus",
    "load_corpora",
    "load_corpus",
    "unified_label",
    "unified_label_set",
    "unify_labels",
]
