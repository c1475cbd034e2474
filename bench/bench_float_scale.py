"""What do the models answer for float audio far beyond full scale, as integer PCM stored unscaled as float gives?

    python bench/bench_float_scale.py [--models ser-general ser-whisper-general]

``int16_array.astype(np.float32)``, or a float WAV written from it, holds samples in the thousands where float
audio lies within ±1. The tiny family's features are level-free; the Whisper family's log-mel keeps the level.
This plays each model's **validation** clips (those its ``metrics.json`` names; never its test speakers) scaled
by 2, 8, 64, 256 and 32768 (unclipped), with hf-ser's input check (``MAX_FLOAT_PEAK``, which now refuses samples
beyond ±4.0) switched off to see what the model itself would answer, and reports accuracy, UAR, top-label
agreement with the clip as recorded, how many answers the "uncertain" rule would have flagged by their score, and
how many clips the check refuses. Prints a table and a BENCH_JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import ValidationReport, label_scores  # noqa: E402

GAINS = (1.0, 2.0, 8.0, 64.0, 256.0, 32768.0)


def main() -> None:
    from hf_ser.inference import confidence_rule
    from hf_ser.models.ser import audio_ser

    limit = audio_ser.MAX_FLOAT_PEAK
    report = ValidationReport.for_models(__doc__.splitlines()[0])
    for model, loaded in report.models.items():
        clf, truth, waves = loaded.classifier, loaded.truth, loaded.waves
        threshold = confidence_rule(clf).threshold
        reference = None
        for gain in GAINS:
            batch = [(w * gain).astype(np.float32) for w in waves]
            refused = sum(float(np.abs(w).max()) > limit for w in batch)
            audio_ser.MAX_FLOAT_PEAK = float("inf")  # what the model would answer without the check
            try:
                answers = [r[0] for r in clf(batch, top_k=1, batch_size=16)]
            finally:
                audio_ser.MAX_FLOAT_PEAK = limit
            predicted = [a["label"] for a in answers]
            reference = reference or predicted  # gain 1 comes first
            result = {
                **label_scores(truth, predicted, reference),
                "low_score": 100 * float(np.mean([a["score"] < threshold for a in answers])),
                "refused": 100 * refused / len(batch),
            }
            report.add(
                model,
                f"x{gain:g}",
                result,
                [f"x{gain:g}"]
                + [f"{result[k]:.1f}" for k in ("accuracy", "uar")]
                + [f"{result[k]:.1f} %" for k in ("agreement", "low_score", "refused")],
            )
    report.print(
        "float_scale",
        "Each model's validation clips scaled (unclipped) as integer PCM stored as float is; agreement: the top label "
        "of the clip as recorded; low score: below the model's uncertain threshold; refused: by hf-ser's input check",
        ["scale", "accuracy", "UAR", "agreement", "low score", "refused"],
        gains=list(GAINS),
        max_float_peak=limit,
    )


if __name__ == "__main__":
    main()
