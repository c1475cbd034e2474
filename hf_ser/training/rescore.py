"""Keeping the per-clip test scores of runs made before they were kept, without training again.

Runs since ``Calibration.test_confidence`` existed store each test clip's calibrated top score and whether its
label was right (so a protocol's ECE can be pooled over its folds: :meth:`ProtocolResult.pooled_calibration`).
For older run folders, :func:`rescore_folds` rebuilds each fold's test split, scores it with the fold's saved
model and fills those two fields in its ``metrics.json``, after checking that it reproduces the stored accuracy
and ECE (the same model on the same clips), so a wrong split or model cannot slip in.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..confidence import clip_scores, expected_calibration_error
from .config import Experiment
from .distill import teacher_probabilities
from .results import RunResult
from .run import DataDirs, load_experiment_data, protocol_folds

logger = logging.getLogger("hf_ser.training")
__all__ = ["rescore_folds", "rescore_run"]

TOLERANCE = 1e-3  # batched (Trainer) and one-clip-at-a-time forward passes differ in float rounding only


def rescore_run(run_dir: Path, splits) -> RunResult:
    """Fill ``calibration.test_confidence`` / ``test_correct`` of the run in ``run_dir`` (tested on
    ``splits["test"]``) and save its ``metrics.json``; the run's stored accuracy and ECE must be reproduced."""
    result = RunResult.load(run_dir / "metrics.json")
    if result.calibration is None:
        raise ValueError(f"{run_dir}: no calibration (trained without validation speakers): nothing to pool")
    if len(splits["test"]) != result.rows.get("test"):
        raise ValueError(
            f"{run_dir}: the rebuilt test split has {len(splits['test'])} clips, the run had "
            f"{result.rows.get('test')}: not the same fold"
        )
    probabilities, model_labels = teacher_probabilities(run_dir, splits, "test")
    names = splits["test"].features["emotion"].names
    truth = np.asarray([model_labels.index(names[i]) for i in splits["test"]["emotion"]])
    confidence, correct = clip_scores(probabilities, truth)
    accuracy, ece = float(np.mean(correct)), expected_calibration_error(probabilities, truth)
    if abs(accuracy - result.test.accuracy) > TOLERANCE or abs(ece - result.calibration.test_ece) > TOLERANCE:
        raise ValueError(
            f"{run_dir}: re-scoring gives accuracy {accuracy:.4f} and ECE {ece:.4f}, the run stored "
            f"{result.test.accuracy:.4f} and {result.calibration.test_ece:.4f}: not the same model or clips"
        )
    result.calibration.test_confidence, result.calibration.test_correct = confidence, correct
    result.save(run_dir / "metrics.json")
    logger.info("%s: %d test clips re-scored (accuracy %.4f, ECE %.4f, as stored)", run_dir, len(truth), accuracy, ece)
    return result


def rescore_folds(exp: Experiment, data: DataDirs, output_dir: Path) -> dict[str, RunResult]:
    """:func:`rescore_run` for every fold folder under ``output_dir`` that lacks the per-clip scores (the corpus is
    loaded and split only when one does)."""
    pending = {
        folder.name
        for folder in sorted(output_dir.iterdir() if output_dir.is_dir() else [])
        if (folder / "metrics.json").is_file()
        and (calibration := RunResult.load(folder / "metrics.json").calibration) is not None
        and not calibration.test_confidence
    }
    if not pending:
        return {}
    fold_splits, _ = protocol_folds(exp, load_experiment_data(exp, data))
    return {name: rescore_run(output_dir / name, splits) for name, splits in fold_splits if name in pending}
