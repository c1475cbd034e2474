"""The one folder walk (batch runs, Ray runs, timelines, adaptation, fine-tuning audiofolders, corpus loaders).

``Path.rglob`` does not follow linked folders and leaves out links to missing files, both without a word: a corpus
linked into a data folder was never read. This walk follows linked folders, each real folder once (so a link back
up the tree does not loop), and returns what is neither a file nor a folder (a link to a missing file, a socket)
for the caller to report.
"""

from __future__ import annotations

import os
from pathlib import Path


def folder_entries(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """``(files, unreadable)`` under ``folder``, each sorted, with the paths as reached from ``folder``."""
    files, unreadable, seen = [], [], set()
    for root, folders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders.sort()
        for name in names:
            entry = Path(root) / name
            (files if entry.is_file() else unreadable).append(entry)
    return sorted(files), sorted(unreadable)
