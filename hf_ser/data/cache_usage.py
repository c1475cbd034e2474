"""What hf-ser's cache holds and how to trim it: augmented audio, features and encoder states (the last can reach
tens of GB: Whisper-base states are about 1 MB per 3 s clip and per augmented copy), nothing evicted by itself.

An *entry* is what one computation wrote: one encoder-state ``.npy`` or statistics ``.npz``, or every shard of
one cached ``Dataset.map`` (``<kind>-<key>[_NNNNN_of_NNNNN].arrow``), or one dataset's folder of audio files
written out of its embedded bytes (``extracted/<fingerprint>/``, :mod:`~hf_ser.data.dataset_audio`); it is removed
whole. "Last used" is the latest of the files' access and modification times, as the filesystem records them; a
cache hit touches them (:func:`~hf_ser.data.cache.cached_map`, :func:`~hf_ser.data.encoder_cache.cache_encoder_states`),
since a filesystem mounted ``relatime`` records a read only once a day.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from .cache import EXTRACTED, cache_root

KINDS = ("encoder_states", "features", "augment", EXTRACTED)
_SHARD = re.compile(r"_\d{5}_of_\d{5}$")


@dataclass(frozen=True)
class CacheEntry:
    kind: str
    paths: tuple[Path, ...]
    bytes: int
    last_used: float


@dataclass(frozen=True)
class KindUsage:
    kind: str
    entries: int
    bytes: int


@dataclass(frozen=True)
class PruneReport:
    removed: int  # entries
    freed: int  # bytes
    remaining: int  # bytes left in the cache
    dry_run: bool


def cache_entries(cache_dir: str | Path | None = None) -> list[CacheEntry]:
    """Every entry of the cache, of every kind."""
    root = cache_root(cache_dir)
    entries = []
    for kind in KINDS:
        groups: dict[str, list[Path]] = {}
        for path in (root / kind).rglob("*") if (root / kind).is_dir() else []:
            if path.is_file():
                if kind == EXTRACTED:  # one dataset's written-out files (a folder each): removed together
                    key = str(path.parent)
                elif kind == "encoder_states":
                    key = str(path.with_suffix(""))
                else:
                    key = _SHARD.sub("", str(path.with_suffix("")))
                groups.setdefault(key, []).append(path)
        for paths in groups.values():
            stats = [p.stat() for p in paths]
            last = max(max(s.st_atime, s.st_mtime) for s in stats)
            entries.append(CacheEntry(kind, tuple(sorted(paths)), sum(s.st_size for s in stats), last))
    return entries


def cache_usage(cache_dir: str | Path | None = None) -> list[KindUsage]:
    """Entries and bytes per kind."""
    entries = cache_entries(cache_dir)
    return [
        KindUsage(kind, sum(e.kind == kind for e in entries), sum(e.bytes for e in entries if e.kind == kind))
        for kind in KINDS
    ]


def prune_cache(max_bytes: int, cache_dir: str | Path | None = None, dry_run: bool = False) -> PruneReport:
    """Remove the least recently used entries until the cache holds at most ``max_bytes`` (``dry_run``: only
    report what would go). Entries are recomputed when next needed. A running job's hits are the newest entries,
    but a limit below its own working set would still remove states its head has yet to read: prune between runs."""
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    entries = sorted(cache_entries(cache_dir), key=lambda e: e.last_used)
    total = sum(e.bytes for e in entries)
    removed = freed = 0
    for entry in entries:
        if total - freed <= max_bytes:
            break
        if not dry_run:
            for path in entry.paths:
                path.unlink(missing_ok=True)
            if entry.kind == EXTRACTED:
                with contextlib.suppress(OSError):  # the dataset's folder, now empty
                    entry.paths[0].parent.rmdir()
        removed, freed = removed + 1, freed + entry.bytes
    return PruneReport(removed, freed, total - freed, dry_run)
