"""The one place where derived datasets (augmented audio, features) are computed, cached and reported.

Both :func:`hf_ser.data.augment.augment` and :func:`hf_ser.data.features.extract_features` run a batched
``Dataset.map`` whose output is cached on disk under a fingerprint of the input rows and the settings,
record per-row failures in an error column, and then drop (and report) the failed rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, Features
from datasets.fingerprint import Hasher

logger = logging.getLogger("hf_ser.data")

ON_ERROR = ("raise", "skip")


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def fingerprint(dataset: Dataset) -> str:
    """The dataset's fingerprint. datasets has no public getter for it; this is the one place that reads it."""
    return dataset._fingerprint


def file_stamps(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of each file, so an edited audio file invalidates the cache."""
    stamps = []
    for p in sorted(set(paths)):
        try:
            st = os.stat(p)
            stamps.append((p, st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append((p, -1, -1))
    return stamps


EXTRACTED = "extracted"  # the cache kind of audio written out of datasets' embedded bytes (data/dataset_audio.py)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """hf-ser's cache folder: ``cache_dir``, else ``$HF_SER_CACHE``, else ~/.cache/hf_ser."""
    return Path(cache_dir or os.environ.get("HF_SER_CACHE") or Path.home() / ".cache" / "hf_ser")


def cache_path(kind: str, key: str, cache_dir: str | Path | None) -> str:
    """Where a derived dataset is cached (``<cache root>/<kind>/<kind>-<key>.arrow``)."""
    root = cache_root(cache_dir) / kind
    root.mkdir(parents=True, exist_ok=True)
    return str(root / f"{kind}-{key}.arrow")


def mark_used(path: str | Path) -> None:
    """Touch a cache file on a hit: `hf-ser cache prune` goes by last use (cache_usage), and a filesystem mounted
    ``relatime`` records a read at most once a day, so without this a prune could take what a run has just found.
    Best-effort: a read-only (shared) cache is still read."""
    with contextlib.suppress(OSError):
        os.utime(path)


def single_threaded_if_forked(parent_pid: int) -> None:
    """In a ``num_proc`` worker, keep torch to one thread: an OpenMP pool inherited through fork deadlocks."""
    if os.getpid() != parent_pid and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def drop_failed(dataset: Dataset, column: str, what: str) -> tuple[Dataset, list[tuple[str, str]]]:
    """Remove rows whose ``column`` holds an error message; return them as ``(file, reason)`` and log them."""
    errors = dataset[column]
    failed = [(dataset[i]["audio"], errors[i]) for i, e in enumerate(errors) if e]
    if failed:
        logger.warning("%s: skipped %d files: %s", what, len(failed), "; ".join(f"{f}: {r}" for f, r in failed[:10]))
        dataset = dataset.filter(lambda e: not e, input_columns=column)
    return dataset.remove_columns(column), failed


def cached_map(
    dataset: Dataset,
    function: Callable[[dict], dict],
    *,
    kind: str,
    settings: Any,
    features: Features,
    error_column: str,
    remove_columns: list[str],
    batch_size: int,
    num_proc: int | None,
    cache_dir: str | Path | None,
) -> tuple[Dataset, list[tuple[str, str]]]:
    """``dataset.map(function)`` cached under (input fingerprint, ``settings``, audio file stamps).

    ``function`` must write an error message (or "") per output row in ``error_column``; failed rows are
    dropped from the result and returned as ``(file, reason)``.
    """
    key = Hasher.hash((fingerprint(dataset), settings, file_stamps(dataset["audio"])))
    mapped = dataset.map(
        function,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc if num_proc and num_proc > 1 and len(dataset) > batch_size else None,
        remove_columns=remove_columns,
        features=features,
        cache_file_name=cache_path(kind, key, cache_dir),
        new_fingerprint=key,
        desc=kind,
    )
    for cache_file in mapped.cache_files:
        mark_used(cache_file["filename"])
    return drop_failed(mapped, error_column, kind)
