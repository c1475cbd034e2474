"""EmoBox's fixed folds (Ma et al., Interspeech 2024; metadata MIT): the standard splits of the SER benchmark.

The folder holds, per corpus, ``fold_<k>/<corpus>_{train,test}_fold_<k>.jsonl``, one record per clip with a
``wav`` path; records are matched to our rows by file name without suffix (our copies are FLAC / Ogg and laid out
as their loaders expect). Only RAVDESS's folds are by speaker; EMO-DB's, TESS's and ASED's are random
(speakers on both sides): :func:`emobox_folds` says which, and the protocols built on it
(:mod:`hf_ser.training.protocols`) label them accordingly. EmoBox has no validation files (it draws 20 % of each
training fold at random); here ``val_size`` of the training speakers is held out, as in our other protocols.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict

from .splits import speaker_keys, subset

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "emobox"
# our file names that EmoBox spells otherwise: TESS's Kaggle copy names one of OAF's clips "OA_bite_neutral"
ALIASES = {"OA_bite_neutral": "OAF_bite_neutral"}


def emobox_dir() -> Path:
    """Where EmoBox's files are: ``$HF_SER_EMOBOX``, else ``../shared/benchmarks/emobox`` beside the checkout."""
    return Path(os.environ.get("HF_SER_EMOBOX", DEFAULT_DIR))


def _stems(path: Path) -> set[str]:
    return {Path(json.loads(line)["wav"]).stem for line in path.read_text().splitlines() if line.strip()}


def emobox_folds(
    dataset: Dataset, val_size: float = 0.0, seed: int = 0, root: str | Path | None = None
) -> tuple[list[tuple[str, DatasetDict]], bool]:
    """``([(fold name, DatasetDict)], speaker_independent)`` of the one corpus in ``dataset`` on EmoBox's folds."""
    corpora = sorted(set(dataset["corpus"]))
    if len(corpora) != 1:
        raise ValueError(f"EmoBox folds are per corpus; the dataset holds {corpora}")
    corpus = corpora[0]
    folder = Path(root or emobox_dir()) / corpus
    tests = sorted(folder.glob(f"fold_*/{corpus}_test_fold_*.jsonl"), key=lambda p: int(p.parent.name[5:]))
    if not tests:
        raise ValueError(f"no EmoBox folds for {corpus!r} under {folder} (set HF_SER_EMOBOX to EmoBox's data folder)")
    stems = [ALIASES.get(Path(a).stem, Path(a).stem) for a in dataset["audio"]]
    speakers = speaker_keys(dataset)
    rng = np.random.default_rng(seed)
    folds, independent = [], True
    for test_file in tests:
        test_stems = _stems(test_file)
        train_stems = _stems(test_file.with_name(test_file.name.replace("_test_", "_train_")))
        test_rows = [i for i, s in enumerate(stems) if s in test_stems]
        train_rows = [i for i, s in enumerate(stems) if s in train_stems]
        missing = len(test_stems | train_stems) - len(test_rows) - len(train_rows)
        if missing:
            raise ValueError(f"{test_file.parent}: {missing} EmoBox clips are not in the loaded {corpus} corpus")
        test_speakers = {speakers[i] for i in test_rows}
        train_speakers = sorted({speakers[i] for i in train_rows})
        independent &= not test_speakers & set(train_speakers)
        parts = {}
        val_speakers: set[str] = set()
        if val_size > 0 and not test_speakers & set(train_speakers):
            count = max(1, round(len(train_speakers) * val_size))
            val_speakers = set(rng.permutation(train_speakers)[:count].tolist())
        parts["train"] = subset(dataset, [i for i in train_rows if speakers[i] not in val_speakers], "train")
        if val_speakers:
            parts["validation"] = subset(dataset, [i for i in train_rows if speakers[i] in val_speakers], "validation")
        parts["test"] = subset(dataset, test_rows, "test")
        folds.append((test_file.parent.name, DatasetDict(parts)))
    return folds, independent
