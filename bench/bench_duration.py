"""How short may a clip be before the model's answer stops meaning much?

    python bench/bench_duration.py [--model ser-whisper-general]

On the model's **validation** speakers (its ``metrics.json`` names them; never its test speakers, so the minimum
length the "uncertain" rule uses may be chosen on these numbers), each clip is cut to an excerpt of 0.3 to 4 s around
the middle of its speech (where the signal is above 2 % of its peak) and classified; the whole clip is the reference.
Prints accuracy, UAR, the mean calibrated top score and how many excerpts the model's "uncertain" rule answers, and
the whole clips' accuracy and mean top score by their own length (a short utterance is not an excerpt of a long one),
and excerpts of 0.5-2 s inside 1 s of near-silence either side (how many the rule answers "uncertain" when its
minimum is measured on the clip's length, and on the VAD's speech time), as tables and a BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import model_speakers, print_json_line, print_table  # noqa: E402

SECONDS = (0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # 4 s: the timeline's window
WHOLE_CLIP_BINS = ((0.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, np.inf))
PADDED_SPEECH = (0.5, 1.0, 2.0)  # seconds of speech inside a clip 2 s longer


def excerpt(wave: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    """``seconds`` of ``wave`` centred on the middle of its speech (the span above 2 % of the peak); the whole clip
    when it is shorter."""
    size = int(seconds * rate)
    if len(wave) <= size:
        return wave
    loud = np.flatnonzero(np.abs(wave) > 0.02 * np.abs(wave).max())
    middle = (loud[0] + loud[-1]) // 2 if loud.size else len(wave) // 2
    start = int(np.clip(middle - size // 2, 0, len(wave) - size))
    return wave[start : start + size]


def main() -> None:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    from hf_ser import load_classifier
    from hf_ser.audio import load_audio
    from hf_ser.inference import confidence_rule
    from hf_ser.input_policy import DEFAULT_POLICY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ser-whisper-general")
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    args = parser.parse_args()

    validation = model_speakers(args.model, args.corpora_dir).validation
    clf = load_classifier(args.model)
    rule = confidence_rule(clf)
    rate = clf.feature_extractor.sampling_rate
    names = validation.features["emotion"].names
    truth = [names[i] for i in validation["emotion"]]
    waves = [load_audio(a, rate)[0] for a in validation["audio"]]
    measured: dict[str, dict[str, float | None]] = {}
    whole_right = whole_top = None
    for seconds in (*SECONDS, None):
        batch = [w if seconds is None else excerpt(w, seconds, rate) for w in waves]
        scores = [{d["label"]: d["score"] for d in r} for r in clf(batch, top_k=None, batch_size=16)]
        predicted = [max(s, key=s.get) for s in scores]
        verdicts = [rule.decide(s, w, rate) for s, w in zip(scores, batch)]
        answered = [v.label != "uncertain" for v in verdicts]
        right = [p == t for p, t in zip(predicted, truth)]
        if seconds is None:
            whole_right, whole_top = np.array(right, float), np.array([max(s.values()) for s in scores])
        measured["whole clip" if seconds is None else f"{seconds:g} s"] = {
            "accuracy": 100 * accuracy_score(truth, predicted),
            "uar": 100 * balanced_accuracy_score(truth, predicted),
            "mean_top_score": float(np.mean([max(s.values()) for s in scores])),
            "uncertain": 100 * (1 - float(np.mean(answered))),
            "accuracy_answered": 100 * float(np.mean([r for r, a in zip(right, answered) if a]))
            if any(answered)
            else None,  # none answered
        }
    rows = [
        [
            k,
            f"{v['accuracy']:.1f}",
            f"{v['uar']:.1f}",
            f"{v['mean_top_score']:.2f}",
            f"{v['uncertain']:.1f} %",
            "–" if v["accuracy_answered"] is None else f"{v['accuracy_answered']:.1f}",
        ]
        for k, v in measured.items()
    ]
    print_table(
        f"{args.model} on its {len(waves)} validation clips, cut to excerpts around the middle of their speech",
        ["length", "accuracy", "UAR", "mean top score", "answered uncertain", "accuracy of the answered"],
        rows,
    )
    # Whole clips by their own length: is a short clip as such overconfident, or only an excerpt cut from a longer
    # utterance? (A temperature that grows as clips get shorter would treat both alike.)
    lengths = np.array([len(w) / rate for w in waves])
    by_length_of_whole: dict[str, dict[str, float]] = {}
    for low, high in WHOLE_CLIP_BINS:
        chosen = (lengths >= low) & (lengths < high)
        if chosen.any():
            by_length_of_whole[f"{low:g}-{high:g} s" if high < np.inf else f">= {low:g} s"] = {
                "clips": int(chosen.sum()),
                "accuracy": 100 * float(whole_right[chosen].mean()),
                "mean_top_score": float(whole_top[chosen].mean()),
            }
    print_table(
        f"the same {len(waves)} validation clips whole, by their length",
        ["length", "clips", "accuracy", "mean top score"],
        [
            [k, str(v["clips"]), f"{v['accuracy']:.1f}", f"{v['mean_top_score']:.2f}"]
            for k, v in by_length_of_whole.items()
        ],
    )
    # Short speech inside a longer clip (1 s of near-silence either side, as a "yes" in a 3 s recording): the
    # rule's minimum measured on the clip's length passes it; measured on the VAD's speech time (as batch rows and
    # the Space do) it does not.
    rng = np.random.default_rng(0)
    padded: dict[str, dict[str, float]] = {}
    for seconds in PADDED_SPEECH:
        batch = [_padded(excerpt(w, seconds, rate), rate, rng) for w in waves]
        scores = [{d["label"]: d["score"] for d in r} for r in clf(batch, top_k=None, batch_size=16)]
        speech = [DEFAULT_POLICY.speech_seconds(w, rate) for w in batch]
        by_length = [rule.decide(s, w, rate).label == "uncertain" for s, w in zip(scores, batch)]
        by_speech = [rule.decide(s, w, rate, t).label == "uncertain" for s, w, t in zip(scores, batch, speech)]
        padded[f"{seconds:g} s in {seconds + 2:g} s"] = {
            "accuracy": 100 * accuracy_score(truth, [max(s, key=s.get) for s in scores]),
            "mean_top_score": float(np.mean([max(s.values()) for s in scores])),
            "mean_speech_seconds": float(np.mean(speech)),
            "uncertain_by_length": 100 * float(np.mean(by_length)),
            "uncertain_by_speech": 100 * float(np.mean(by_speech)),
        }
    print_table(
        f"the same {len(waves)} validation clips' excerpts inside 1 s of near-silence either side",
        ["speech in clip", "accuracy", "mean top score", "VAD speech s", "uncertain: by length", "by speech time"],
        [
            [
                k,
                f"{v['accuracy']:.1f}",
                f"{v['mean_top_score']:.2f}",
                f"{v['mean_speech_seconds']:.2f}",
                f"{v['uncertain_by_length']:.1f} %",
                f"{v['uncertain_by_speech']:.1f} %",
            ]
            for k, v in padded.items()
        ],
    )
    print_json_line(
        "duration",
        {
            "model": args.model,
            "clips": len(waves),
            "results": measured,
            "whole_by_length": by_length_of_whole,
            "padded_speech": padded,
        },
    )


def _padded(speech: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``speech`` with 1 s either side of a noise floor 80 dB under full scale (not digital silence)."""
    out = (1e-4 * rng.standard_normal(len(speech) + 2 * rate)).astype(np.float32)
    out[rate : rate + len(speech)] += speech
    return out


if __name__ == "__main__":
    main()
