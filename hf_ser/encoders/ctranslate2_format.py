"""Reader of CTranslate2's ``model.bin`` (binary format version 6), as far as a weights converter needs it.

No maintained library exposes the raw tensors of a CTranslate2 model (``ctranslate2`` itself runs the model but
offers no tensor access), so the layout is read here: little-endian; uint32 version, spec name (uint16 length
including the NUL, then the bytes), uint32 revision, uint32 variable count; per variable its name (same string
form), uint8 rank, uint32 per dimension, uint8 dtype, uint32 byte count and the raw data; then uint32 alias
count and alias/target name pairs. The file may be split in parts (as the PyPI packages ship it): the parts
are read as one stream, in memory, never joined on disk.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SUPPORTED_VERSION = 6
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5 = bfloat16 (no numpy type)


class CTranslate2FormatError(ValueError):
    """The file is not a CTranslate2 model.bin this reader understands (the reason is in the message)."""


class _PartsReader:
    """Sequential reads over several files as if they were one (no joined copy is written)."""

    def __init__(self, parts: Sequence[Path]):
        self.parts = [Path(p) for p in parts]
        self.handles = [open(p, "rb") for p in self.parts]  # noqa: SIM115 (closed by close(), several at once)
        self.index = 0

    def read(self, size: int) -> bytes:
        chunks = []
        while size > 0 and self.index < len(self.handles):
            chunk = self.handles[self.index].read(size)
            if not chunk:
                self.index += 1
                continue
            chunks.append(chunk)
            size -= len(chunk)
        data = b"".join(chunks)
        if size > 0:
            raise CTranslate2FormatError(f"{self.parts[-1]}: file ends early (truncated model.bin?)")
        return data

    def skip(self, size: int) -> None:
        while size > 0:
            if self.index >= len(self.handles):
                raise CTranslate2FormatError(f"{self.parts[-1]}: file ends early (truncated model.bin?)")
            handle = self.handles[self.index]
            here = handle.tell()
            end = handle.seek(0, 2)
            step = min(size, end - here)
            handle.seek(here + step)
            size -= step
            if size > 0:
                self.index += 1

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


@dataclass
class CTranslate2Model:
    """The variables of a model.bin that the reader kept (by name), and the spec it declares."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # every variable in the file, kept or not

    def get(self, name: str) -> np.ndarray:
        name = self.aliases.get(name, name)
        if name not in self.variables:
            raise KeyError(f"CTranslate2 variable {name!r} not in the model (or not read)")
        return self.variables[name]


def _u32(reader: _PartsReader) -> int:
    return struct.unpack("<I", reader.read(4))[0]


def _string(reader: _PartsReader) -> str:
    (length,) = struct.unpack("<H", reader.read(2))
    return reader.read(length)[:-1].decode("utf-8")


def read_model_bin(parts: Path | Sequence[Path], keep: Callable[[str], bool] = lambda name: True) -> CTranslate2Model:
    """Read a CTranslate2 ``model.bin`` given as one path or as its parts in order; only variables whose name
    ``keep`` accepts are loaded (the rest are skipped without reading them)."""
    parts = [parts] if isinstance(parts, str | Path) else list(parts)
    for part in parts:
        if not Path(part).is_file():
            raise FileNotFoundError(f"{part}: CTranslate2 model file not found")
    reader = _PartsReader(parts)
    try:
        version = _u32(reader)
        if version != SUPPORTED_VERSION:
            raise CTranslate2FormatError(f"{parts[0]}: CTranslate2 format version {version}, expected 6")
        model = CTranslate2Model(spec=_string(reader), revision=_u32(reader))
        for _ in range(_u32(reader)):
            name = _string(reader)
            rank = reader.read(1)[0]
            shape = [_u32(reader) for _ in range(rank)]
            dtype_code = reader.read(1)[0]
            size = _u32(reader)
            model.names.append(name)
            if not keep(name):
                reader.skip(size)
                continue
            if dtype_code not in DTYPES:
                raise CTranslate2FormatError(f"{name}: dtype code {dtype_code} is not supported (bfloat16?)")
            model.variables[name] = np.frombuffer(reader.read(size), dtype=DTYPES[dtype_code]).reshape(shape)
        for _ in range(_u32(reader)):
            alias = _string(reader)
            model.aliases[alias] = _string(reader)
        return model
    finally:
        reader.close()


def sha256_of_parts(parts: Sequence[Path], block: int = 1 << 22) -> str:
    """SHA-256 of the parts read as one file (equal to the digest of the joined model.bin)."""
    digest = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as handle:
            while chunk := handle.read(block):
                digest.update(chunk)
    return digest.hexdigest()
