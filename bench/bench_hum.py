"""Does mains hum move the models' answers, and would cutting the lowest frequencies before the tiny model help?

    python bench/bench_hum.py [--models ser-general ser-whisper-general]

A recording near mains wiring picks up a 50 or 60 Hz hum. The tiny family's lowest mel bands (0-92 Hz and
46-139 Hz at its defaults) take it in, and in silent frames it lifts them off the ``top_db`` floor, as a DC offset
did (bench_dc.py). This plays each model's **validation** clips (those its ``metrics.json`` names; never its test
speakers) with a 50 or 60 Hz sine at -30 and -20 dB under the clip's RMS, and reports clean UAR and top-label
agreement with the same pipeline's clip without hum. For the tiny family it also measures one remedy at inference
only: everything under a cutoff (60, 70, 80 Hz) removed before the features (the clip's spectrum zeroed there; the
models were trained without it). Prints a table and a BENCH_JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import ValidationReport, top_labels  # noqa: E402

HUMS = ((50, -30), (50, -20), (60, -30), (60, -20))  # (Hz, dB under the clip's RMS)
CUTOFFS = (None, 60, 70, 80)


def with_hum(wave: np.ndarray, hz: float, db: float, rate: int) -> np.ndarray:
    rms = np.sqrt(np.mean(np.square(wave, dtype=np.float64)))
    tone = np.sqrt(2) * rms * 10 ** (db / 20) * np.sin(2 * np.pi * hz * np.arange(wave.size) / rate)
    return (wave + tone).astype(np.float32)


def high_passed(wave: np.ndarray, cutoff: float | None, rate: int) -> np.ndarray:
    """``wave`` with its spectrum zeroed under ``cutoff`` Hz (the whole clip's FFT): the remedy measured here."""
    if cutoff is None:
        return wave
    spectrum = np.fft.rfft(wave.astype(np.float64))
    spectrum[np.fft.rfftfreq(wave.size, 1 / rate) < cutoff] = 0
    return np.fft.irfft(spectrum, n=wave.size).astype(np.float32)


def labels(clf, waves: list[np.ndarray], cutoff: float | None, rate: int) -> list[str]:
    """The top label of each clip, after the cut."""
    return top_labels(clf, [high_passed(w, cutoff, rate) for w in waves])


def main() -> None:
    from sklearn.metrics import balanced_accuracy_score

    report = ValidationReport.for_models(__doc__.splitlines()[0])
    for model, loaded in report.models.items():
        clf, rate, truth, waves = loaded.classifier, loaded.rate, loaded.truth, loaded.waves
        tiny = hasattr(clf.feature_extractor, "remove_dc_offset")
        for cutoff in CUTOFFS if tiny else (None,):
            reference = labels(clf, waves, cutoff, rate)
            result = {"clean_uar": 100 * balanced_accuracy_score(truth, reference)}
            for hz, db in HUMS:
                hummed = labels(clf, [with_hum(w, hz, db, rate) for w in waves], cutoff, rate)
                result[f"{hz} Hz {db} dB"] = 100 * float(np.mean([a == b for a, b in zip(reference, hummed)]))
            setting = "none" if cutoff is None else f"{cutoff} Hz"
            report.add(
                model,
                setting,
                result,
                [setting, f"{result['clean_uar']:.1f}"] + [f"{result[f'{hz} Hz {db} dB']:.1f} %" for hz, db in HUMS],
            )
    report.print(
        "hum",
        "Each model's validation clips with mains hum (dB under the clip's RMS); agreement with the same pipeline's "
        "clip without hum; cut: spectrum zeroed under it before the model (inference only)",
        ["cut", "clean UAR", *[f"{hz} Hz {db} dB" for hz, db in HUMS]],
    )


if __name__ == "__main__":
    main()
