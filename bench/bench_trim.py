"""Does silence around the speech move the models' answers, and would trimming a clip to its speech help?

    python bench/bench_trim.py [--models ser-general ser-whisper-general]

A recording's leading and trailing silence is not the speaker's doing, yet both families hear it: the tiny family's
per-utterance level and attention pooling, and Whisper's encoder, take every frame. This plays each model's
**validation** clips (those its ``metrics.json`` names; never its test speakers) as recorded and with 1 s of digital
silence, or 2 s of faint noise (1e-4 RMS), added on both sides, and reports UAR and top-label agreement with the same
pipeline's clip as recorded. It also measures one remedy at inference only (the models were trained on clips as
recorded): each clip trimmed to the span from its first to its last speech chunk of Silero VAD (the input policy's,
threshold 0.5), with a margin of 0.1, 0.25 or 0.5 s kept on each side; or to the span of frames within 40-60 dB of
its loudest one (the tiny extractor's ``trim_db`` step, which needs no VAD and so runs in the pipeline, the ONNX
runtime and training alike; a model that ships with it, as ser-general now does at 50 dB and 0.5 s, is measured with
its own trim switched off, so "none" is the model without it). Prints a table and a BENCH_JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import ValidationReport, label_scores, top_labels  # noqa: E402

RATE = 16000
VAD_MARGINS = (0.1, 0.25, 0.5)
ENERGY = ((60, 0.5), (50, 0.5), (40, 0.5), (50, 0.25))  # (dB under the loudest frame, margin in seconds)


def padded(wave: np.ndarray, seconds: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    def side() -> np.ndarray:
        return rng.normal(0.0, noise, int(seconds * RATE)).astype(np.float32)

    return np.concatenate([side(), wave, side()])


def trims() -> dict:
    """Remedy name -> what it does to a clip (at ``RATE``)."""
    from hf_ser.models.ser.mfcc_features_ser import prepared_wave

    out = {"none": lambda w: w}
    for margin in VAD_MARGINS:
        out[f"VAD, {margin:g} s margin"] = lambda w, m=margin: vad_trimmed(w, m)
    for db, margin in ENERGY:  # the extractor's own step (trim_db, trim_margin), applied before it here
        out[f"level {db} dB, {margin:g} s margin"] = lambda w, d=db, m=margin: prepared_wave(
            w, RATE, trim_db=d, trim_margin=m
        )
    return out


def vad_trimmed(wave: np.ndarray, margin: float) -> np.ndarray:
    """``wave`` from its first to its last speech chunk, ``margin`` seconds kept each side (as is where the VAD
    hears no chunk of speech)."""
    from hf_ser.input_policy import DEFAULT_POLICY, VAD_CHUNK, speech_probabilities

    speech = np.flatnonzero(speech_probabilities(DEFAULT_POLICY.vad_input(wave)) >= DEFAULT_POLICY.vad_threshold)
    if not speech.size:
        return wave
    start = max(0, speech[0] * VAD_CHUNK - int(margin * RATE))
    end = min(wave.size, (speech[-1] + 1) * VAD_CHUNK + int(margin * RATE))
    return wave[start:end]


def main() -> None:
    report = ValidationReport.for_models(__doc__.splitlines()[0])
    for model, loaded in report.models.items():
        clf, truth, waves = loaded.classifier, loaded.truth, loaded.waves
        if getattr(clf.feature_extractor, "trim_db", None) is not None:  # ser-general ships with the level trim:
            clf.feature_extractor.trim_db = None  # each remedy is measured on the model without it, "none" included
        rng = np.random.default_rng(0)
        conditions = {
            "as recorded": waves,
            "1 s silence each side": [padded(w, 1.0, 0.0, rng) for w in waves],
            "2 s faint noise each side": [padded(w, 2.0, 1e-4, rng) for w in waves],
        }
        for setting, trim in trims().items():
            reference = None
            for condition, batch in conditions.items():
                inputs = [trim(w) for w in batch]
                predicted = top_labels(clf, inputs)
                reference = reference or predicted  # "as recorded" comes first
                result = label_scores(truth, predicted, reference)
                cells = [setting, condition, f"{result['uar']:.1f}", f"{result['agreement']:.1f} %"]
                report.add(model, f"{setting}, {condition}", result, cells)
    report.print(
        "trim",
        "Each model's validation clips with silence added around them; agreement with the same pipeline's clip as "
        "recorded; trim: to the VAD's speech span plus a margin, before the model (inference only)",
        ["trim", "condition", "UAR", "agreement"],
    )


if __name__ == "__main__":
    main()
