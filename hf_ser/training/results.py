"""Typed results: the schema of a run's ``metrics.json`` and a protocol's ``summary.json``.

Everything that reads results (cards, the demo, reports, release) goes through these classes, so a
field is named in one place. They are pydantic models: ``model_dump_json`` / ``model_validate_json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..confidence import ece_floor_of_scores, ece_sampling_floor, pooled_ece

HEADLINE = ("accuracy", "uar", "macro_f1", "weighted_f1")


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path):
        return cls.model_validate_json(Path(path).read_text())


class Scores(_Result):
    """Headline metrics of one test set, as fractions."""

    accuracy: float
    uar: float
    macro_f1: float
    weighted_f1: float


class ClassScores(_Result):
    precision: float
    recall: float
    f1: float
    support: int


class MeanStd(_Result):
    mean: float
    std: float

    @classmethod
    def of(cls, values: list[float]) -> MeanStd:
        return cls(mean=float(np.mean(values)), std=float(np.std(values)))

    def percent(self) -> str:
        return f"{100 * self.mean:.2f} ± {100 * self.std:.2f}"


class Calibration(_Result):
    """Temperature scaling fitted on the validation speakers, and what it did (ECE: 15-bin, top score)."""

    temperature: float
    validation_ece_raw: float
    validation_ece: float
    test_ece_raw: float
    test_ece: float
    # negative log-likelihood on the validation speakers before and after (what the temperature minimises)
    validation_nll_raw: float | None = None
    validation_nll: float | None = None
    # (threshold on the calibrated top score, share of test clips answered, accuracy on those)
    test_coverage: list[tuple[float, float, float]] = []
    # each test clip's calibrated top score (4 decimals) and whether its label was right, in the split's order:
    # what pools the ECE of a protocol's folds (every clip tested once, by the fold that never heard its speaker)
    test_confidence: list[float] = []
    test_correct: list[bool] = []

    def coverage_at(self, threshold: float) -> tuple[float, float] | None:
        """(share of test clips answered, accuracy on those) at ``threshold`` (to 2 decimals, the curve's step);
        None where the curve has no such point."""
        curve = {round(t, 2): (covered, accuracy) for t, covered, accuracy in self.test_coverage}
        return curve.get(round(threshold, 2))

    def ece_floor(self, clips: int) -> float | None:
        """A perfectly calibrated model's ECE on the ``clips`` test clips, by chance alone: from each clip's score
        where the run kept them, else from the coverage curve (runs before they were kept); None without either."""
        if self.test_confidence:
            return ece_floor_of_scores(np.asarray(self.test_confidence))
        return ece_sampling_floor(self.test_coverage, clips) if self.test_coverage and clips else None


@dataclass(frozen=True)
class PooledCalibration:
    """The test clips of every fold as one set: ECE over all of them, and what a perfectly calibrated model would
    score on as many clips with the same top scores (:func:`~hf_ser.confidence.ece_floor_of_scores`)."""

    clips: int
    ece: float
    floor: float


class ConditionScores(_Result):
    """The test split under one recording condition (:mod:`hf_ser.data.corruptions`)."""

    accuracy: float
    uar: float
    agreement: float  # share of clips whose top label equals the clean clip's
    ece: float  # with the model's (calibrated) temperature


class ConditionSummary(_Result):
    accuracy: MeanStd
    uar: MeanStd
    agreement: MeanStd
    ece: MeanStd


class Hardware(_Result):
    device: str
    cpu: str
    torch_threads: int
    torch: str


class ProtocolResult(_Result):
    """A whole protocol: every fold's scores, mean ± std (population std over folds), summed confusion."""

    protocol: str
    corpora: list[str] = []
    folds: dict[str, Scores]
    accuracy: MeanStd
    uar: MeanStd
    macro_f1: MeanStd
    weighted_f1: MeanStd
    labels: list[str]
    confusion_matrix: list[list[int]]
    parameters: int
    wall_seconds: float
    seconds_per_epoch: float
    hardware: Hardware
    collapsed_speakers: list[str] = []  # test speakers whose clips all got one label
    validation_uar: dict[str, float | None] = {}  # per fold: best validation UAR over epochs (None: no validation)
    calibration: dict[str, Calibration] = {}  # per fold, where validation speakers were held out
    corrupted: dict[str, ConditionSummary] = {}  # recording condition -> mean ± std over folds
    corrupted_validation: dict[str, ConditionSummary] = {}  # the same on validation speakers (for choosing)
    # per fold: the validation speakers under each condition (variants are compared on the folds they share)
    validation_conditions: dict[str, dict[str, ConditionScores]] = {}
    # per fold: the test speakers under each condition (a screen is reported beside its base on the same folds)
    test_conditions: dict[str, dict[str, ConditionScores]] = {}
    seeds: int = 1  # training seeds whose fold runs the summaries pool (one protocol run: 1)

    def ece(self, raw: bool = False) -> MeanStd | None:
        """Test ECE over folds, calibrated (or ``raw``: the softmax of the logits); None without calibration."""
        if not self.calibration:
            return None
        return MeanStd.of([c.test_ece_raw if raw else c.test_ece for c in self.calibration.values()])

    def pooled_calibration(self) -> PooledCalibration | None:
        """ECE over the test clips of all folds together; None unless every fold kept its clips' scores."""
        folds = list(self.calibration.values())
        if not folds or not all(c.test_confidence for c in folds):
            return None
        confidence = np.concatenate([c.test_confidence for c in folds])
        correct = np.concatenate([c.test_correct for c in folds])
        return PooledCalibration(len(confidence), pooled_ece(confidence, correct), ece_floor_of_scores(confidence))

    def headline(self, key: str) -> MeanStd:
        return getattr(self, key)


class RunResult(_Result):
    """One trained model tested once: ``metrics.json`` of a run folder."""

    protocol: str = "holdout"
    test: Scores
    per_class: dict[str, ClassScores]
    confusion_matrix: list[list[int]]
    labels: list[str]
    best_validation_uar: float | None = None
    rows: dict[str, int]
    speakers: dict[str, list[str]]
    speaker_predictions: dict[str, dict[str, int]] = {}  # test speaker -> predicted label -> count
    parameters: int
    epochs_run: float
    train_seconds: float
    seconds_per_epoch: float
    wall_seconds: float
    hardware: Hardware
    cross_validation: ProtocolResult | None = None  # the recipe's protocol result, for released checkpoints
    robustness: ProtocolResult | None = None  # the recipe scored under recording conditions, for released checkpoints
    calibration: Calibration | None = None  # None: no validation speakers to fit a temperature on
    corrupted: dict[str, ConditionScores] = {}  # the test split under each evaluated recording condition
    corrupted_validation: dict[str, ConditionScores] = {}  # the validation split under each (recipes are chosen here)

    def collapsed_speakers(self, min_clips: int = 5) -> list[str]:
        """Test speakers with at least ``min_clips`` clips that all received the same label."""
        return sorted(
            s
            for s, counts in self.speaker_predictions.items()
            if sum(counts.values()) >= min_clips and len(counts) == 1
        )


def summarize(protocol: str, corpora: list[str], runs: dict[str, RunResult]) -> ProtocolResult:
    """Aggregate fold runs into a :class:`ProtocolResult`."""
    first = next(iter(runs.values()))
    return ProtocolResult(
        protocol=protocol,
        corpora=corpora,
        folds={name: r.test for name, r in runs.items()},
        **{key: MeanStd.of([getattr(r.test, key) for r in runs.values()]) for key in HEADLINE},
        labels=first.labels,
        confusion_matrix=np.sum([r.confusion_matrix for r in runs.values()], axis=0).tolist(),
        parameters=first.parameters,
        wall_seconds=float(sum(r.wall_seconds for r in runs.values())),
        seconds_per_epoch=float(np.mean([r.seconds_per_epoch for r in runs.values()])),
        hardware=first.hardware,
        collapsed_speakers=sorted({s for r in runs.values() for s in r.collapsed_speakers()}),
        validation_uar={name: r.best_validation_uar for name, r in runs.items()},
        calibration={name: r.calibration for name, r in runs.items() if r.calibration is not None},
        corrupted=condition_summaries([r.corrupted for r in runs.values()]),
        corrupted_validation=condition_summaries([r.corrupted_validation for r in runs.values()]),
        validation_conditions={n: r.corrupted_validation for n, r in runs.items() if r.corrupted_validation},
        test_conditions={n: r.corrupted for n, r in runs.items() if r.corrupted},
    )


def condition_summaries(folds: list[dict[str, ConditionScores]]) -> dict[str, ConditionSummary]:
    """Mean ± std over folds of each condition every fold was scored under."""
    shared = [c for c in folds[0] if all(c in f for f in folds)]
    return {
        c: ConditionSummary(**{k: MeanStd.of([getattr(f[c], k) for f in folds]) for k in ConditionScores.model_fields})
        for c in shared
    }
