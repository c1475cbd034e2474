"""Would setting every clip to one level before the model make it ignore recording gain, and at what cost?

    python bench/bench_level.py [--model ser-whisper-general] [--reference-clips 300]

The Whisper family's log-mel keeps the absolute level (bench_robustness.py: its top label moves at -24 dB), the
tiny family's features are gain-normalised. This measures one remedy on the model's **validation** speakers (those
its ``metrics.json`` names; never its test speakers, so a choice made on these numbers is not made on them): each
clip scaled to the median RMS level of ``--reference-clips`` of its training clips (inference only; the model was
trained at recorded levels). ``--model`` may also be a fold model of a k-fold run
(``runs/results/<experiment>/seed_0/fold_0``). Prints accuracy and UAR as recorded and after a gain of -24, -12 and
+6 dB (clipped to [-1, 1]), each with and without the level step, and top-label agreement with the same pipeline's
clip at 0 dB, as a table and a BENCH_JSON line. A diagnostic for a recipe trained with the Whisper extractor's
``level_dbfs`` setting (the same step in training and inference), and for one trained with gain copies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import label_scores, model_speakers, print_json_line, print_table, top_labels  # noqa: E402
from bench_robustness import with_gain  # noqa: E402

from hf_ser.models.ser.whisper_features_ser import at_level as scaled_to_level  # noqa: E402
from hf_ser.models.ser.whisper_features_ser import rms_dbfs  # noqa: E402

GAINS_DB = (0, -24, -12, 6)


def at_level(wave: np.ndarray, level_dbfs: float) -> np.ndarray:
    """The clip played at ``level_dbfs`` RMS: the extractor's ``level_dbfs`` step, but clipped to [-1, 1] as a
    recording made at that level would be (the extractor's own step never clips)."""
    return with_gain(scaled_to_level(wave, level_dbfs), 0.0).astype(np.float32)


def main() -> None:

    from hf_ser import load_classifier
    from hf_ser.audio import load_audio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ser-whisper-general")
    parser.add_argument("--reference-clips", type=int, default=300)
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    args = parser.parse_args()

    speakers = model_speakers(args.model, args.corpora_dir)
    validation, train = speakers.validation, speakers.train
    clf = load_classifier(args.model)
    rate = clf.feature_extractor.sampling_rate
    train = train.shuffle(seed=0).select(range(min(args.reference_clips, len(train))))
    level = float(np.median([rms_dbfs(load_audio(a, rate)[0]) for a in train["audio"]]))
    names = validation.features["emotion"].names
    truth = [names[i] for i in validation["emotion"]]
    waves = [load_audio(a, rate)[0] for a in validation["audio"]]

    measured: dict[str, dict[str, float]] = {}
    reference: dict[str, list[str]] = {}
    for gain in GAINS_DB:
        gained = [with_gain(w, gain).astype(np.float32) for w in waves]
        for step, batch in (("as recorded", gained), ("one level", [at_level(w, level) for w in gained])):
            predicted = top_labels(clf, batch)
            reference.setdefault(step, predicted)  # gain 0 comes first
            measured[f"gain {gain:+d} dB, {step}"] = label_scores(truth, predicted, reference[step])
    rows = [[k, f"{v['accuracy']:.1f}", f"{v['uar']:.1f}", f"{v['agreement']:.1f} %"] for k, v in measured.items()]
    levels = np.percentile([rms_dbfs(w) for w in waves], [0, 50, 100])
    print_table(
        f"{args.model} on its {len(waves)} validation clips; one level = {level:.1f} dBFS RMS, the median of "
        f"{len(train)} training clips (validation clips: {levels[0]:.1f} / {levels[1]:.1f} / {levels[2]:.1f} dBFS "
        "min / median / max)",
        ["condition", "accuracy", "UAR", "agreement with 0 dB"],
        rows,
    )
    print_json_line("level", {"model": args.model, "clips": len(waves), "level_dbfs": level, "results": measured})


if __name__ == "__main__":
    main()
