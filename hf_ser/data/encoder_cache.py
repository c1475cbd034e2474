"""Frozen-encoder states computed once per clip (and per augmented copy) and cached on disk, so a head trains
from the cache: Whisper-base costs about 60 ms of CPU per 3 s clip, the head's epoch a few seconds.

Each clip's states are one ``.npy`` file (float16, (frames, layers, width)) named by a hash of the encoder's
identity and the clip (file path, size and modification time, or the samples of an in-memory augmented copy).
The dataset gets an ``encoder_states`` column holding those file names; :class:`~hf_ser.data.collate.InMemoryFeatures`
loads them. Files that cannot be decoded are reported with their reason (log line) and left out of the split.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from datasets import Dataset, DatasetDict

from ..audio import AudioDecodeError, decode_row
from ..models.ser.mfcc_features_ser import speaker_statistics as frame_statistics
from .cache import cache_root, mark_used

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("hf_ser.data")
STATES_COLUMN = "encoder_states"
STATISTICS_COLUMN = "state_statistics"  # per row: the .npz of its group's (mean, std), adaptive variants only


def default_cache_dir() -> Path:
    return cache_root() / "encoder_states"


@dataclass
class EncoderCacheStats:
    """What one pass cost: clips encoded (cache misses), clips found, seconds spent encoding, bytes on disk."""

    encoded: int = 0
    cached: int = 0
    seconds: float = 0.0
    bytes: int = 0
    skipped: list[tuple[str, str]] | None = None


def _clip_key(encoder_id: str, path: str | None, array, rate) -> str:
    digest = hashlib.sha1(encoder_id.encode())
    if array is not None:
        digest.update(np.asarray(array, dtype=np.float32).tobytes())
        digest.update(str(rate).encode())
    else:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


FULL_DISK_BYTES = 16 * 2**20  # a failed write with less than this free on the cache's disk: the disk is full


class CacheFullError(OSError):
    """The cache's disk is full: an error of the machine, not of a clip, so it stops the run (skipping every
    clip from there on would train on what little was cached)."""


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary path)`` beside ``target``, then rename: a reader never sees half a file, and a failed
    write leaves nothing behind."""
    tmp = target.with_suffix(f".{os.getpid()}.tmp{target.suffix}")
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        # numpy reports a short write on a full disk as "N requested and M written", without ENOSPC
        if err.errno == errno.ENOSPC or shutil.disk_usage(target.parent).free < FULL_DISK_BYTES:
            raise CacheFullError(
                errno.ENOSPC,
                f"no space left for {target.name} in {target.parent}: free some, e.g. "
                "`hf-ser cache prune --max-gb N` (see `hf-ser cache info`)",
            ) from err
        raise


def cache_encoder_states(
    data: Dataset | DatasetDict,
    feature_extractor,
    encode: Callable[[list[np.ndarray]], list[np.ndarray]],
    encoder_id: str,
    cache_dir: str | Path | None = None,
    stats: EncoderCacheStats | None = None,
    batch_size: int = 8,
) -> Dataset | DatasetDict:
    """Add the ``encoder_states`` column (cache file per row), encoding only clips not cached yet.

    ``encode([log_mel (frames, bins), ...]) -> [(frames', layers, width), ...]``, called on ``batch_size`` clips at
    a time (the encoder's matrix products are faster in batches: 48 RAVDESS clips in 4.3 s against 5.2 s on 2 CPU
    cores at 8, far more on a GPU). A batch that fails is encoded again clip by clip, so a bad clip is skipped
    alone. ``encoder_id`` names the encoder and its weights (a change makes new
    cache entries)."""
    stats = stats if stats is not None else EncoderCacheStats(skipped=[])
    if isinstance(data, DatasetDict):
        return DatasetDict(
            {
                k: cache_encoder_states(v, feature_extractor, encode, encoder_id, cache_dir, stats, batch_size)
                for k, v in data.items()
            }
        )
    folder = Path(cache_dir or default_cache_dir())
    folder.mkdir(parents=True, exist_ok=True)
    rate = feature_extractor.sampling_rate
    n = len(data)
    arrays = data["array"] if "array" in data.column_names else [None] * n
    rates = data["sampling_rate"] if "sampling_rate" in data.column_names else [None] * n
    files: dict[int, str] = {}
    pending: list[tuple[int, str, Path, np.ndarray]] = []  # (row, path, cache file, log-mel) not encoded yet

    def skip(path, err: Exception) -> None:
        message = str(err) if str(path) in str(err) else f"{path}: {err}"
        logger.warning("encoder cache: skipped %s", message)
        if stats.skipped is not None:
            stats.skipped.append((str(path), message))

    def encoded(mels: list[np.ndarray]) -> list[np.ndarray | Exception]:
        if len(mels) > 1:
            try:
                return list(encode(mels))
            except (ValueError, RuntimeError):
                pass  # one clip's fault (too long, say): each alone below, so the others are still encoded
        out: list[np.ndarray | Exception] = []
        for mel in mels:
            try:
                out.append(encode([mel])[0])
            except ValueError as err:
                out.append(err)
        return out

    def flush() -> None:
        started = time.perf_counter()
        results = encoded([mel for *_, mel in pending])
        stats.seconds += time.perf_counter() - started
        for (index, path, target, _), states in zip(pending, results):
            if isinstance(states, Exception):
                skip(path, states)
                continue
            states = np.asarray(states, dtype=np.float16)
            try:
                _write_atomically(target, lambda tmp, states=states: np.save(tmp, states))
            except CacheFullError:
                raise
            except OSError as err:
                skip(path, err)
                continue
            stats.encoded += 1
            stats.bytes += target.stat().st_size
            files[index] = str(target)
        pending.clear()

    for index, (path, array, sr) in enumerate(zip(data["audio"], arrays, rates)):
        try:
            target = folder / f"{_clip_key(encoder_id, path, array, sr)}.npy"
            if target.is_file():
                mark_used(target)  # before its head reads them, a prune must not take what this run found
                stats.cached += 1
                stats.bytes += target.stat().st_size
                files[index] = str(target)
                continue
            wave = decode_row(path, array, sr, rate)
            pending.append((index, path, target, feature_extractor(wave)["input_features"][0]))
        except (AudioDecodeError, ValueError, OSError) as err:
            skip(path, err)
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    keep = sorted(files)
    out = data.select(keep) if len(keep) < n else data
    drop = [c for c in ("array", "sampling_rate", STATES_COLUMN) if c in out.column_names]
    return out.remove_columns(drop).add_column(STATES_COLUMN, [files[i] for i in keep])


def load_states(path: str) -> np.ndarray:
    """One clip's cached states (frames x layers x width, float16), read into memory."""
    return np.load(path)


def map_states(path: str) -> torch.Tensor:
    """One clip's cached states as a float16 tensor memory-mapped from the file, copy-on-write: the pages are the
    operating system's to drop and read back, so a training set larger than memory (the default's five copies of
    three corpora are ~20 GB) still fits, and a write to the tensor never reaches the cache. Not ``np.load(...,
    mmap_mode=...)``: Python's mmap keeps a descriptor open per file, and a training set has more files than the
    usual limit of 1,024 open ones; torch's file mapping closes it once mapped."""
    import torch
    from numpy.lib import format as npy

    with open(path, "rb") as handle:
        version = npy.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{path}: .npy format {version} is not one the encoder cache writes")
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
        offset = handle.tell()
    if dtype != np.float16 or fortran_order:
        raise ValueError(
            f"{path}: expected C-ordered float16 encoder states, found {dtype} (Fortran order: {fortran_order})"
        )
    size, expected = os.path.getsize(path), offset + dtype.itemsize * int(np.prod(shape))
    if size != expected:
        raise ValueError(f"{path}: {size} bytes, expected {expected} for states of shape {shape}")
    raw = torch.from_file(path, shared=False, size=size, dtype=torch.uint8)  # shared=False: a private mapping
    return raw[offset:].view(torch.float16).reshape(shape)


def standardize_states(data: Dataset, group: str = "speaker", cache_dir: str | Path | None = None) -> Dataset:
    """Adaptive variants: each row gets the file of its group's (speaker's or corpus's) encoder-state statistics,
    the mean and standard deviation of every (layer, dimension) over all frames of the group's clips in ``data``
    (unlabelled, so a test speaker or corpus is adapted to without labels). ``InMemoryFeatures`` standardises the
    states with them when it loads them; the cached states themselves stay as the encoder gave them."""
    indices: dict[str, list[int]] = {}
    for index, key in enumerate(data[group]):
        indices.setdefault(str(key), []).append(index)
    files = data[STATES_COLUMN]
    folder = Path(cache_dir or default_cache_dir()) / "statistics"
    folder.mkdir(parents=True, exist_ok=True)
    column = [""] * len(data)
    for key, rows in indices.items():
        members = sorted(files[i] for i in rows)
        target = folder / f"{hashlib.sha1(chr(0).join([group, key, *members]).encode()).hexdigest()}.npz"
        if not target.is_file():
            mean, std = frame_statistics(load_states(f) for f in members)
            _write_atomically(target, lambda tmp, mean=mean, std=std: np.savez(tmp, mean=mean, std=std))
        for i in rows:
            column[i] = str(target)
    out = data.remove_columns([STATISTICS_COLUMN]) if STATISTICS_COLUMN in data.column_names else data
    return out.add_column(STATISTICS_COLUMN, column)


def load_statistics(path: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as stats:
        return stats["mean"], stats["std"]
