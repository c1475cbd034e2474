"""The README's table of the bundled checkpoints, generated from each one's ``metrics.json``: what it was trained
on, how it did on its holdout speakers, how calibrated its scores are and what the "uncertain" rule leaves."""

from __future__ import annotations

from pathlib import Path

from ..confidence import DEFAULT_RULE
from ..training.results import RunResult
from .release import ReleasePlan

WEIGHTS = "model.safetensors"


def checkpoint_lines(plan: ReleasePlan, checkpoints: Path) -> list[str]:
    """One row per checkpoint of ``plan`` (in its order), from ``checkpoints/<name>/metrics.json``."""
    threshold = DEFAULT_RULE.threshold
    lines = [
        "| checkpoint | trained on | classes | holdout speakers | accuracy / UAR (%) | ECE raw → calibrated "
        f"(temperature) | answered at {threshold} (accuracy of those) | recipe's cross-validation UAR | weights |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, spec in plan.checkpoints.items():
        folder = checkpoints / name
        if not (folder / "metrics.json").is_file():
            raise FileNotFoundError(f"checkpoint {name}: no {folder / 'metrics.json'} (hf-ser release checkpoints)")
        result = RunResult.load(folder / "metrics.json")
        test = result.test
        cv = result.cross_validation.uar.percent() if result.cross_validation is not None else "—"
        megabytes = (folder / WEIGHTS).stat().st_size / 2**20
        lines.append(
            f"| {name} | {' + '.join(spec.corpora)} | {len(result.labels)} | {len(result.speakers.get('test', []))} "
            f"| {100 * test.accuracy:.1f} / {100 * test.uar:.1f} | {_calibration(result)} "
            f"| {_answered(result, threshold)} | {cv} | {megabytes:.1f} MB |"
        )
    return lines


def _calibration(result: RunResult) -> str:
    c = result.calibration
    if c is None:
        return "not calibrated"
    return f"{c.test_ece_raw:.3f} → {c.test_ece:.3f} ({c.temperature:.2f})"


def _answered(result: RunResult, threshold: float) -> str:
    answered = result.calibration.coverage_at(threshold) if result.calibration is not None else None
    if answered is None:
        return "—"
    return f"{100 * answered[0]:.0f} % ({100 * answered[1]:.1f} %)"
