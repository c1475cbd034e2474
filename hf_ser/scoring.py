"""How well does a trained model do on *your* labelled clips, before any fine-tuning (``hf-ser score``)?

The data is read as ``hf-ser finetune`` reads it (an audiofolder, a CSV/JSONL manifest or a saved dataset:
:func:`hf_ser.finetune.load_user_data`), each label matched to the model's through the unified taxonomy (``anger``
= ``angry``, ``joy`` = ``happy``, …). The clips are classified as batch runs classify them
(:func:`hf_ser.batch.predict_files`: the same decoding, input checks and "uncertain" rule), and the report holds the
headline figures (accuracy, UAR, macro F1, per class, the confusion matrix), the calibration on these clips (ECE
beside what a perfectly calibrated model would show on as many clips) and what the "uncertain" rule did (the share
answered, their accuracy). Nothing is dropped silently: bad rows, labels the model does not have, files that fail
to decode and clips without speech are each listed in ``left_out`` with the reason.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .batch import predict_files
from .confidence import (
    DEFAULT_RULE,
    UNCERTAIN,
    ConfidenceRule,
    coverage_curve,
    ece_floor_of_scores,
    expected_calibration_error,
)
from .finetune import UNKNOWN_SPEAKER, load_user_data, unified_name
from .input_policy import NO_SPEECH

logger = logging.getLogger("hf_ser.scoring")


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class LabelledScores:
    """A model's figures on a user's labelled clips (fractions in [0, 1]). ``labels`` are the model's, in the order
    of ``confusion_matrix``'s rows (truth) and columns (prediction); ``per_class`` holds the labels the data has."""

    clips: int
    labels: list[str]
    accuracy: float
    uar: float
    macro_f1: float
    per_class: dict[str, LabelScores]
    confusion_matrix: list[list[int]]
    ece: float
    ece_perfect_model: float  # the ECE a perfectly calibrated model would show on as many clips, by sampling alone
    answered: float  # share of clips answered with a label, not "uncertain"
    accuracy_answered: float | None  # None when every clip was "uncertain"
    coverage: list[tuple[float, float, float]]  # (threshold, share answered, accuracy of the answered)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (the row, file or label; why)
    adapted_speakers: int = 0  # a speaker-adaptive model: the speakers it was adapted to, each on its own clips

    def to_dict(self) -> dict:
        return asdict(self)


def matched_label(label: str, model_labels: list[str], label_map: dict[str, str] | None = None) -> str | None:
    """The model's label for a user's label: the one ``label_map`` names for it, else the same name (any case), else
    the same emotion in the unified taxonomy (``anger`` for a model's ``angry``); None when the model has no such
    label."""
    by_name = {name.lower(): name for name in model_labels}
    mapped = {k.strip().lower(): v for k, v in (label_map or {}).items()}
    if label.strip().lower() in mapped:
        return by_name[mapped[label.strip().lower()].strip().lower()]
    if label.strip().lower() in by_name:
        return by_name[label.strip().lower()]
    by_unified = {unified_name(name) or name: name for name in model_labels}
    unified = unified_name(label)
    return by_unified.get(unified) if unified is not None else None


def score_labelled(
    source: str | Path,
    classify: Callable[[list[np.ndarray]], list[list[dict]]],
    rate: int,
    model_labels: list[str],
    rule: ConfidenceRule = DEFAULT_RULE,
    longest: float | None = None,
    workers: int = 2,
    batch_size: int = 16,
    label_map: dict[str, str] | None = None,
    adapt: Callable[[list[str]], object] | None = None,
) -> LabelledScores:
    """Classify every usable clip of ``source`` and score the answers against its labels (see the module).
    ``label_map``: the user's label -> the model's, for labels the taxonomy does not match (``{"calm": "neutral"}``:
    the bundled general models were trained with RAVDESS calm as neutral). ``adapt``: for a speaker-adaptive
    model, adapts ``classify``'s model to the clips it is given; each speaker's clips (the data's speaker column)
    are then classified after adapting to that speaker's clips, as ``hf-ser predict --adapt-on`` does for one."""
    from .metrics import load_ser_metrics

    wrong = {k: v for k, v in (label_map or {}).items() if v.strip().lower() not in {n.lower() for n in model_labels}}
    if wrong:
        raise ValueError(f"label map {wrong}: map to one of the model's labels ({', '.join(model_labels)})")
    data = load_user_data(source, min_labels=1)
    if adapt is not None and not data.has_speakers:
        raise ValueError(
            f"{source}: a speaker-adaptive model is adapted to each speaker's clips, and this data names no speakers "
            "(a 'speaker' column in metadata.csv or the manifest)"
        )
    left_out = list(data.bad_rows)
    names = data.dataset.features["emotion"].names
    truth_of: dict[str, tuple[str, str]] = {}  # the file's real path -> (the path as given, the model's label)
    unmatched: Counter[str] = Counter()
    for path, index in zip(data.dataset["audio"], data.dataset["emotion"]):
        label = matched_label(names[index], model_labels, label_map)
        if label is None:
            unmatched[names[index]] += 1
        elif (key := os.path.realpath(path)) in truth_of:  # a manifest that lists a file twice: one vote, not two
            left_out.append((path, f"listed more than once: scored once, as {truth_of[key][1]!r}"))
        else:
            truth_of[key] = (path, label)
    for label, count in sorted(unmatched.items()):
        left_out.append(
            (
                f"label {label!r} ({count} clips)",
                f"not one of the model's labels ({', '.join(model_labels)}): --map {label}=<one of them> "
                "(label_map in Python) scores them as that label",
            )
        )
    if not truth_of:
        raise ValueError(f"{source}: none of its labels is one of the model's ({', '.join(model_labels)})")
    groups = {"": [given for given, _ in truth_of.values()]}
    if adapt is not None:
        groups = _speaker_groups(data, truth_of, left_out)
    rows, adapted = [], 0
    for speaker, files in groups.items():
        if adapt is not None:
            try:
                adapt(files)
            except ValueError as err:  # no usable clip of this speaker: its clips cannot be answered
                left_out += [(path, f"speaker {speaker!r} could not be adapted to: {err}") for path in files]
                continue
            adapted += 1
        rows += predict_files(files, classify, rate, workers, batch_size, rule=rule, longest=longest)
    scored = []
    for row in rows:
        if row.error:
            left_out.append((row.path, row.error))
        elif row.label == NO_SPEECH:
            left_out.append((row.path, "no speech found"))
        else:
            scored.append(row)
    for where, why in left_out[len(data.bad_rows) :]:  # load_user_data logged its own
        logger.warning("left out %s: %s", where, why)
    if not scored:
        raise ValueError(f"{source}: no clip could be scored ({len(left_out)} left out, e.g. {left_out[:3]})")
    probs = np.array([[row.scores[name] for name in model_labels] for row in scored])
    references = np.array([model_labels.index(truth_of[os.path.realpath(row.path)][1]) for row in scored])
    predictions = probs.argmax(axis=1)
    report = load_ser_metrics().compute(
        predictions=predictions, references=references, num_labels=len(model_labels), label_names=model_labels
    )
    answered = np.array([row.label != UNCERTAIN for row in scored])
    right = predictions == references
    present = set(references.tolist())
    return LabelledScores(
        clips=len(scored),
        labels=list(model_labels),
        accuracy=report["accuracy"],
        uar=report["uar"],
        macro_f1=report["macro_f1"],
        per_class={
            name: LabelScores(**report["per_class"][name]) for i, name in enumerate(model_labels) if i in present
        },
        confusion_matrix=report["confusion_matrix"],
        ece=expected_calibration_error(probs, references),
        ece_perfect_model=ece_floor_of_scores(probs.max(axis=1)),
        answered=float(answered.mean()),
        accuracy_answered=float(right[answered].mean()) if answered.any() else None,
        coverage=coverage_curve(probs, references),
        left_out=left_out,
        adapted_speakers=adapted,
    )


def _speaker_groups(data, truth_of: dict[str, tuple[str, str]], left_out: list) -> dict[str, list[str]]:
    """The files to score by speaker; a row without a speaker cannot be adapted to and is left out."""
    speaker_of = {os.path.realpath(p): s for p, s in zip(data.dataset["audio"], data.dataset["speaker"])}
    groups: dict[str, list[str]] = {}
    for key, (given, _) in truth_of.items():
        speaker = speaker_of[key]
        if speaker == UNKNOWN_SPEAKER:
            left_out.append((given, "no speaker given: a speaker-adaptive model is adapted to each speaker's clips"))
        else:
            groups.setdefault(speaker, []).append(given)
    return dict(sorted(groups.items()))
