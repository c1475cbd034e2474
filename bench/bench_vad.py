"""Does the input policy's "no speech" ever answer real speech, and does it keep noise out?

    python bench/bench_vad.py [--model ser-whisper-general]

Every clip of the real corpora (RAVDESS, EMO-DB, TESS, ASED) goes through the policy's VAD
(``hf_ser.input_policy.DEFAULT_POLICY.speech``): how many have under 0.1 s of chunks at Silero's 0.5 (what "no
speech" was decided on alone), how many of those reach the policy's ``speech_evidence`` somewhere (classified now,
and answered "uncertain"), how many remain "no speech", and how many have under the "uncertain" rule's minimum of
speech (0.8 s). Then the highest chunk probability of synthetic non-speech (noise, hum, tones, clicks), which the
evidence threshold must stay above, and the model's accuracy and mean top score on the clips the evidence lets
through. Prints tables and a BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import print_json_line, print_table  # noqa: E402

CORPORA = ("ravdess", "emodb", "tess", "ased")


def non_speech(seconds: float = 3.0, rate: int = 16000) -> dict[str, np.ndarray]:
    """Synthetic sounds that are not speech, each peak-normalised (the VAD's input is, whatever the level)."""
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    white = rng.standard_normal(n)
    sounds = {
        "white noise": white,
        "pink noise": np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, n // 2 + 2)), n),
        "brown noise": np.cumsum(white),
        "50 Hz hum": np.sin(2 * np.pi * 50 * t),
        "60 Hz harmonic hum": sum(np.sin(2 * np.pi * 60 * k * t) / k for k in range(1, 8)),
        "120 Hz buzz": np.sign(np.sin(2 * np.pi * 120 * t)),
        "chord": sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)),
        "melody": np.concatenate([np.sin(2 * np.pi * f * t[: n // 6 + 1]) for f in (440, 494, 523, 587, 659, 698)])[:n],
        "clicks": (rng.random(n) < 0.002).astype(float),
        "fan": np.convolve(white, np.ones(40) / 40, "same") + 0.3 * np.sin(2 * np.pi * 120 * t),
    }
    return {name: (0.3 * w / np.abs(w).max()).astype(np.float32) for name, w in sounds.items()}


def main() -> None:
    from hf_ser import load_classifier
    from hf_ser.audio import load_audio
    from hf_ser.data.corpora import load_corpus
    from hf_ser.finetune import unified_name
    from hf_ser.input_policy import DEFAULT_POLICY, speech_probabilities

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ser-whisper-general")
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    args = parser.parse_args()

    policy, rate = DEFAULT_POLICY, 16000
    per_corpus, rescued = {}, []
    for corpus in CORPORA:
        ds = load_corpus(corpus, args.corpora_dir / corpus)
        names = ds.features["emotion"].names
        counts, missed_by_emotion = Counter(), Counter()
        for path, emotion in zip(ds["audio"], ds["emotion"]):
            wave, _ = load_audio(path, rate)
            found = policy.speech(wave, rate)
            counts["clips"] += 1
            if found.seconds < policy.min_speech_seconds:
                counts["under 0.1 s at 0.5"] += 1
                missed_by_emotion[names[emotion]] += 1
                if policy.has_speech(found):
                    counts["classified (evidence)"] += 1
                    rescued.append((corpus, path, names[emotion]))
            if not policy.has_speech(found):
                counts["no speech"] += 1
            if found.seconds < 0.8:
                counts["under 0.8 s"] += 1
        per_corpus[corpus] = {**counts, "missed_by_emotion": dict(missed_by_emotion)}
    print_table(
        "real clips through the input policy's VAD",
        ["corpus", "clips", "under 0.1 s at 0.5", "of them classified now", "no speech", "under 0.8 s", "missed"],
        [
            [
                corpus,
                str(c["clips"]),
                str(c.get("under 0.1 s at 0.5", 0)),
                str(c.get("classified (evidence)", 0)),
                str(c.get("no speech", 0)),
                str(c.get("under 0.8 s", 0)),
                ", ".join(f"{k} {v}" for k, v in sorted(c["missed_by_emotion"].items())) or "–",
            ]
            for corpus, c in per_corpus.items()
        ],
    )
    noise = {name: float(speech_probabilities(policy.vad_input(w)).max()) for name, w in non_speech().items()}
    print_table(
        f"synthetic non-speech: highest chunk probability (speech evidence {policy.speech_evidence})",
        ["sound", "peak probability", "answered"],
        [
            [name, f"{p:.2f}", "no speech" if not policy.has_speech(policy.speech(w, rate)) else "classified"]
            for (name, w), p in zip(non_speech().items(), noise.values())
        ],
    )
    clf = load_classifier(args.model)
    right, tops = [], []
    for _, path, emotion in rescued:
        top = clf(path, top_k=1)[0]
        right.append(top["label"] == (unified_name(emotion) or emotion))
        tops.append(top["score"])
    print(
        f"\n{args.model} on the {len(rescued)} clips the evidence now lets through: {sum(right)} right "
        f"({100 * np.mean(right):.1f} %), mean top score {np.mean(tops):.2f} (they are answered 'uncertain')"
    )
    print_json_line(
        "vad",
        {
            "model": args.model,
            "speech_evidence": policy.speech_evidence,
            "corpora": per_corpus,
            "non_speech_peak": noise,
            "let_through": {
                "clips": len(rescued),
                "right": int(sum(right)),
                "mean_top_score": float(np.mean(tops)) if tops else None,
            },
        },
    )


if __name__ == "__main__":
    main()
