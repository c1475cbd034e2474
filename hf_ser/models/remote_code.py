"""The Hub remote code of each family, written into a folder only when it leaves the package.

The model files live once, in ``hf_ser/models/ser/``. Bundled checkpoints hold weights, configs, cards and ONNX
exports but no copy of the code (hf-ser loads them through its registered classes); a Hub push (and any other
folder meant for machines without hf-ser) gets the files written by :func:`write_remote_code`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "ser"
_SER = [
    "configuration_ser.py",
    "feature_extraction_ser.py",
    "mfcc_features_ser.py",
    "modeling_ser.py",
    "pipeline_ser.py",
    "audio_ser.py",
]
FILES: dict[str, list[str]] = {
    "ser": _SER,
    "ser_whisper": [
        *_SER,
        "configuration_ser_whisper.py",
        "feature_extraction_ser_whisper.py",
        "modeling_ser_whisper.py",
        "whisper_features_ser.py",
    ],
}


def remote_code_files(folder: str | Path) -> list[str]:
    """File names of the remote code a model folder needs (by its ``config.json`` model type)."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        raise ValueError(f"{folder}: no config.json (not a model folder)")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type not in FILES:
        raise ValueError(f"{folder}: model_type {model_type!r} is not an hf-ser family ({', '.join(FILES)})")
    return list(FILES[model_type])


def write_remote_code(folder: str | Path) -> list[str]:
    """Copy the folder's remote code files into it (overwriting stale copies); returns their names."""
    names = remote_code_files(folder)
    for name in names:
        shutil.copyfile(SOURCE / name, Path(folder) / name)
    return names


def strip_remote_code(folder: str | Path) -> None:
    """Remove copies of the remote code from a folder that stays inside the package."""
    for name in {n for files in FILES.values() for n in files}:
        (Path(folder) / name).unlink(missing_ok=True)
