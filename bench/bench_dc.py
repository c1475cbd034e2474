"""Does a recording's DC offset move the models' answers, with and without the extractor's DC removal?

    python bench/bench_dc.py [--models ser-general ser-whisper-general]

Some sound cards and microphone amplifiers add a constant to every sample (a DC offset). The tiny family's
MFCC / log-mel puts it in the lowest mel band, where it lifts silent frames off the ``top_db`` floor; its extractor
now subtracts each clip's mean sample value (``remove_dc_offset``, on by default). This plays each model's
**validation** clips (those its ``metrics.json`` names; never its test speakers) with an offset of 0.3 %, 1 %, 3 %
and 10 % of full scale (clipped to [-1, 1], as a recording would be), and reports accuracy, UAR and top-label
agreement with the same pipeline's clip as recorded; for the tiny family also with the removal switched off (the
extractor before it, in the same run). Prints a table and a BENCH_JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import ValidationReport, label_scores, top_labels  # noqa: E402

OFFSETS = (0.0, 0.003, 0.01, 0.03, 0.1)


def main() -> None:
    report = ValidationReport.for_models(__doc__.splitlines()[0])
    for model, loaded in report.models.items():
        clf, truth, waves = loaded.classifier, loaded.truth, loaded.waves
        extractor = clf.feature_extractor
        settings = ["removed", "kept (before)"] if hasattr(extractor, "remove_dc_offset") else ["as is"]
        for setting in settings:
            if hasattr(extractor, "remove_dc_offset"):
                extractor.remove_dc_offset = setting == "removed"
            reference = None
            for offset in OFFSETS:
                batch = [np.clip(w + offset, -1, 1).astype(np.float32) for w in waves]
                predicted = top_labels(clf, batch)
                reference = reference or predicted  # offset 0 comes first
                result = label_scores(truth, predicted, reference)
                report.add(
                    model,
                    f"{setting}, offset {offset:g}",
                    result,
                    [setting, f"{100 * offset:g} %"]
                    + [f"{result['accuracy']:.1f}", f"{result['uar']:.1f}", f"{result['agreement']:.1f} %"],
                )
    report.print(
        "dc",
        "Each model's validation clips with a DC offset (share of full scale); agreement: the top label of the same "
        "pipeline's clip as recorded",
        ["DC offset in the extractor", "offset", "accuracy", "UAR", "agreement"],
        offsets=list(OFFSETS),
    )


if __name__ == "__main__":
    main()
