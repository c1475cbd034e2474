"""Does the top label depend on recording gain or on the microphone's frequency response?

    python bench/bench_robustness.py [--model FOLDER] [--clips 120]

Takes real clips (RAVDESS, every actor and emotion, from ../shared/corpora), classifies each at 0 dB and
again after a gain of -30 … +10 dB, and after fixed equaliser curves (telephone band-pass, a bright and a
dull microphone: audiomentations filters with fixed settings); prints the share of clips whose top label
is unchanged, per condition, as a table and a BENCH_JSON line. Target: ≥ 95 % at every gain from -24 to
+6 dB. Samples are clipped to [-1, 1] after a positive gain, as a real recording would be.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import print_json_line, print_table  # noqa: E402

GAINS_DB = (-30, -24, -18, -12, -6, 6, 10)


def equalisers():
    import audiomentations as am

    return {
        "telephone (300-3400 Hz)": am.Compose(
            [
                am.HighPassFilter(min_cutoff_freq=300, max_cutoff_freq=300, p=1.0),
                am.LowPassFilter(min_cutoff_freq=3400, max_cutoff_freq=3400, p=1.0),
            ]
        ),
        "bright mic (+6 dB high shelf)": am.HighShelfFilter(
            min_center_freq=3000, max_center_freq=3000, min_gain_db=6, max_gain_db=6, p=1.0
        ),
        "dull mic (-6 dB high shelf)": am.HighShelfFilter(
            min_center_freq=3000, max_center_freq=3000, min_gain_db=-6, max_gain_db=-6, p=1.0
        ),
        "boomy mic (+6 dB low shelf)": am.LowShelfFilter(
            min_center_freq=300, max_center_freq=300, min_gain_db=6, max_gain_db=6, p=1.0
        ),
    }


def sample_clips(corpora_dir: Path, n: int, seed: int = 0) -> list[str]:
    from hf_ser.data.corpora import load_corpus

    ds = load_corpus("ravdess", corpora_dir / "ravdess")
    order = np.random.default_rng(seed).permutation(len(ds))[:n]
    return [ds[int(i)]["audio"] for i in order]


def agreement(model: str | None, clips: list[str]) -> dict[str, float]:
    from hf_ser import load_classifier
    from hf_ser.audio import load_audio

    clf = load_classifier(model)
    rate = clf.feature_extractor.sampling_rate
    waves = [load_audio(c, rate)[0] for c in clips]

    def tops(batch):
        return [r[0]["label"] for r in clf(batch, top_k=1, batch_size=16)]

    reference = tops(waves)
    out = {}
    for gain in GAINS_DB:
        changed = [np.clip(w * 10 ** (gain / 20), -1, 1).astype(np.float32) for w in waves]
        out[f"gain {gain:+d} dB"] = float(np.mean([a == b for a, b in zip(reference, tops(changed))]))
    for name, transform in equalisers().items():
        changed = [transform(samples=w, sample_rate=rate).astype(np.float32) for w in waves]
        out[name] = float(np.mean([a == b for a, b in zip(reference, tops(changed))]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder or bundled name (default: the default model)")
    parser.add_argument("--compare", default=None, help="a second model to measure in the same run")
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    args = parser.parse_args()
    clips = sample_clips(args.corpora_dir, args.clips)
    models = [args.model] + ([args.compare] if args.compare else [])
    results = {str(m or "default"): agreement(m, clips) for m in models}
    conditions = list(next(iter(results.values())))
    rows = [[c, *[f"{100 * r[c]:.1f} %" for r in results.values()]] for c in conditions]
    print_table(f"top-label agreement with 0 dB, {len(clips)} RAVDESS clips", ["condition", *results], rows)
    target = {m: min(r[f"gain {g:+d} dB"] for g in GAINS_DB if -24 <= g <= 6) for m, r in results.items()}
    for model, worst in target.items():
        print(f"{model}: worst agreement from -24 to +6 dB {100 * worst:.1f} % (target >= 95 %)")
    print_json_line("robustness", {"clips": len(clips), "agreement": results, "worst_-24_to_+6": target})


if __name__ == "__main__":
    main()
