"""Would a reverberation check make the "uncertain" rule more honest? A blind reverberation measure on the bundled
models' validation clips, clean and in simulated rooms.

    python bench/bench_reverb.py [--models ser-general ser-whisper-general]

The rule answers "uncertain" for a phone line, heavy clipping and short clips, but nothing flags a room. This plays
each model's **validation** clips (its ``metrics.json``'s; never its test speakers) clean, in the training copies'
room (RT60 0.4 s, 1.5 m), in the corrupted suite's room (RT60 0.6 s, 2 m), in a harsher one (RT60 0.8 s, 2.5 m) and
with white noise at SNR 10 dB (a condition the check must not mistake for a room), and measures each clip's
speech-to-reverberation modulation energy ratio (SRMR, Falk et al. 2010: the energy of the speech envelope's
4-20 Hz modulations over that of the faster ones a room's tail fills; lower is more reverberant). For each condition
it reports accuracy and UAR, the share of clips the check would flag at each threshold, and the accuracy of the
answered clips under the rule as it is and with the check added. Prints tables and a BENCH_JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import ValidationReport, print_table  # noqa: E402

THRESHOLDS = (2.5, 3.0, 3.5, 4.0)


def srmr(wave: np.ndarray, rate: int = 16000, channels: int = 23, low_hz: float = 125.0) -> float:
    """SRMR after SRMRToolbox's original (slow, unnormalised) variant: a 23-band gammatone filterbank (the
    ``gammatone`` package), each band's Hilbert envelope through 8 modulation band-passes (4-128 Hz, Q 2) in
    256 ms Hamming frames every 64 ms; the ratio of the energy in the 4 lowest modulation bands to that in bands 5
    to K*, K* set by the bandwidth below which 90 % of the energy lies. Written here because SRMRpy is not on PyPI
    and torchmetrics' port needs torchaudio, which this project cannot install."""
    from gammatone.filters import centre_freqs, erb_filterbank, make_erb_filters
    from scipy.signal import hilbert, lfilter

    x = np.asarray(wave, np.float64)
    x = x / (np.abs(x).max() + 1e-12)
    cfs = centre_freqs(rate, channels, low_hz)[::-1]  # low to high
    env = np.abs(hilbert(erb_filterbank(x, make_erb_filters(rate, cfs)), axis=1))
    mod_cfs = np.logspace(np.log10(4.0), np.log10(128.0), 8)
    window, hop = int(np.ceil(0.256 * rate)), int(np.ceil(0.064 * rate))
    frames = 1 + (env.shape[1] - window) // hop
    index = np.arange(window)[None, :] + hop * np.arange(frames)[:, None]
    taper = np.hamming(window + 1)[:-1]
    energy = np.zeros((channels, len(mod_cfs)))
    for j, cf in enumerate(mod_cfs):
        w = np.tan(np.pi * cf / rate)
        b0 = w / 2.0  # Q = 2
        b = np.array([b0, 0.0, -b0])
        a = np.array([1 + b0 + w * w, 2 * w * w - 2, 1 - b0 + w * w])
        band = lfilter(b / a[0], a / a[0], env, axis=1)
        energy[:, j] = np.mean(np.sum((band[:, index] * taper) ** 2, axis=2), axis=1)
    erbs = cfs / 9.26449 + 24.7
    k90 = int(np.searchsorted(np.cumsum(energy.sum(axis=1)) / energy.sum(), 0.9))
    upper = mod_cfs + np.tan(np.pi * mod_cfs / rate) / 2.0 * rate / np.pi
    kstar = 5 + int(np.sum(erbs[k90] >= upper[4:7]))
    return float(energy[:, :4].sum() / energy[:, 4:kstar].sum())


def conditions():
    from audiomentations import AddGaussianSNR

    from hf_ser.data.corruptions import Reverb

    return {
        "clean": None,
        "training room (RT60 0.4 s, 1.5 m)": Reverb(0.4, room=(5.0, 4.0, 2.8), distance=1.5),
        "suite room (RT60 0.6 s, 2 m)": Reverb(0.6),
        "harsh room (RT60 0.8 s, 2.5 m)": Reverb(0.8, room=(7.0, 5.0, 3.0), distance=2.5),
        "white SNR 10": AddGaussianSNR(min_snr_db=10, max_snr_db=10, p=1.0),
    }


def main() -> None:
    from sklearn.metrics import balanced_accuracy_score

    from hf_ser.inference import confidence_rule

    report = ValidationReport.for_models(__doc__.splitlines()[0])
    flag_rows = []
    for model, loaded in report.models.items():
        clf, truth, rate = loaded.classifier, np.asarray(loaded.truth), loaded.rate
        rule = confidence_rule(clf)
        for name, change in conditions().items():
            np.random.seed(0)  # AddGaussianSNR draws from numpy's global generator: the same noise every run
            waves = [w if change is None else np.asarray(change(w, rate), np.float32) for w in loaded.waves]
            ratios = np.array([srmr(w, rate) for w in waves])
            answers = clf(waves, top_k=None, batch_size=16)
            verdicts = [rule.decide({d["label"]: d["score"] for d in r}, w, rate) for r, w in zip(answers, waves)]
            predicted = np.array([v.emotion for v in verdicts])
            right = predicted == truth
            kept = ~np.array([v.uncertain for v in verdicts])
            result = {
                "accuracy": 100 * float(right.mean()),
                "uar": 100 * float(balanced_accuracy_score(truth, predicted)),
                "srmr_p5_p50_p95": [float(v) for v in np.percentile(ratios, [5, 50, 95])],
                "answered": 100 * float(kept.mean()),
                "answered_accuracy": 100 * float(right[kept].mean()) if kept.any() else float("nan"),
            }
            cells = []
            for t in THRESHOLDS:
                both = kept & (ratios >= t)
                result[f"flagged_{t}"] = 100 * float((ratios < t).mean())
                result[f"answered_{t}"] = 100 * float(both.mean())
                result[f"answered_accuracy_{t}"] = 100 * float(right[both].mean()) if both.any() else float("nan")
                cells.append(f"{result[f'flagged_{t}']:.0f} % / {result[f'answered_accuracy_{t}']:.1f}")
            report.add(
                model,
                name,
                result,
                [name, f"{result['accuracy']:.1f}", f"{result['uar']:.1f}",
                 "{:.2f} / {:.2f} / {:.2f}".format(*result["srmr_p5_p50_p95"]),
                 f"{result['answered']:.0f} % / {result['answered_accuracy']:.1f}"],
            )  # fmt: skip
            flag_rows.append([model, name, *cells])
    report.print(
        "reverb",
        "Validation clips per condition: accuracy, UAR, SRMR (5th / 50th / 95th percentile), and under the rule as it "
        "is: share answered / their accuracy",
        ["condition", "accuracy", "UAR", "SRMR p5 / p50 / p95", "answered / accuracy"],
        thresholds=list(THRESHOLDS),
    )
    print_table(
        "With a reverberation check added (SRMR below the threshold: uncertain): share flagged by it / accuracy "
        "of the clips still answered",
        ["model", "condition", *[f"SRMR < {t}" for t in THRESHOLDS]],
        flag_rows,
    )


if __name__ == "__main__":
    main()
