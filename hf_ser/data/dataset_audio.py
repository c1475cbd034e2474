"""File paths for the audio of a ``datasets`` ``Audio`` column, without decoding it.

datasets 4+ decodes an ``Audio`` column with torchcodec, which this project does not install (DESIGN.md: no
torchcodec, no torchaudio); reading such a column's rows the usual way raises "please install 'torchcodec'". Cast
to ``Audio(decode=False)``, each row is ``{"bytes": ..., "path": ...}``: a local file (``bytes`` None), or the
file's bytes embedded in the dataset, as in datasets loaded from the Hub and in what ``save_to_disk`` writes (it
embeds local files). hf-ser decodes files itself (soundfile, soxr), so embedded bytes are written out once,
under hf-ser's cache (kind ``extracted``, one folder per dataset fingerprint, trimmed by ``hf-ser cache prune``
like the other kinds), and every row becomes a path.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Audio, Dataset

from .cache import EXTRACTED, cache_root, fingerprint, mark_used


def undecoded(dataset: Dataset, column: str) -> Dataset:
    """``dataset`` with ``column`` cast to ``Audio(decode=False)`` when it is an ``Audio`` column (unchanged
    otherwise), so reading its rows never needs torchcodec."""
    feature = dataset.features[column]
    if isinstance(feature, Audio) and feature.decode:
        return dataset.cast_column(column, Audio(sampling_rate=feature.sampling_rate, decode=False))
    return dataset


def audio_paths(dataset: Dataset, column: str, cache_dir: str | Path | None = None) -> list[str]:
    """One file path per row of ``column``: a string column as it is; an ``Audio`` column's ``path`` where the
    row holds no bytes, else its embedded bytes written to ``<cache>/extracted/<fingerprint>/`` (once; a later
    call finds them there). A row with neither raises a ValueError naming it."""
    values = undecoded(dataset, column)[column]
    folder = cache_root(cache_dir) / EXTRACTED / fingerprint(dataset)
    paths = []
    for i, value in enumerate(values):
        if not isinstance(value, dict):
            paths.append(str(value))
        elif value.get("bytes") is not None:
            paths.append(str(_written(folder, i, value.get("path"), value["bytes"])))
        elif value.get("path"):
            paths.append(str(value["path"]))
        else:
            raise ValueError(f"row {i + 1} of column {column!r}: neither a file path nor the file's bytes")
    return paths


def _written(folder: Path, index: int, name: str | None, data: bytes) -> Path:
    """The bytes as a file named after the row (its own name kept for the suffix), written atomically once."""
    target = folder / f"{index:06d}-{Path(name).name if name else 'audio'}"
    if target.is_file() and target.stat().st_size == len(data):
        mark_used(target)
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target
