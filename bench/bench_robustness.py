"""Does the top label depend on recording gain or on the microphone's frequency response?

    python bench/bench_robustness.py [--model FOLDER] [--clips 120] [--held-out]

Takes real clips (RAVDESS, every actor and emotion, from ../shared/corpora; with ``--held-out``, each model's own
test speakers from its ``metrics.json``, of any corpus there, so no clip was heard in its training or
calibration; two models then get different clips), classifies each at 0 dB and
again after a gain of -30 … +10 dB, after fixed equaliser curves (telephone band-pass, a bright and a
dull microphone: audiomentations filters with fixed settings), and under every recording condition of the
corrupted suite (``hf_ser.data.corruptions.suite()``: phone line, codecs, white and babble noise, a room,
clipping; babble from RAVDESS clips outside the sample); prints the share of clips whose top label is
unchanged, and the share the "uncertain" rule (``hf_ser.confidence``) flags, per condition, as a table and a
BENCH_JSON line. Target: ≥ 95 % at every gain from -24 to +6 dB. Samples are clipped to [-1, 1] after a
positive gain, as a real recording would be. The protocol-level suite (accuracy, UAR, calibration on every test
fold) is ``evaluation.corruptions`` in an experiment: RESULTS.md, "Real-world audio".
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


def with_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """``wave`` played ``gain_db`` louder, clipped to [-1, 1] as a recording would be."""
    return np.clip(wave * 10 ** (gain_db / 20), -1, 1)


def equalisers():
    """Fixed equaliser curves. Every parameter is pinned: audiomentations draws a filter's roll-off (12-24 dB per
    octave) and a shelf's Q (0.1-0.999) per call unless told, so two runs of this bench differed under these rows
    (47.5 and 51.7 % agreement for the band-pass) with the model unchanged."""
    import audiomentations as am

    def shelf(kind, freq: float, gain: float):
        return kind(min_center_freq=freq, max_center_freq=freq, min_gain_db=gain, max_gain_db=gain, min_q=0.707,
                    max_q=0.707, p=1.0)  # fmt: skip

    return {
        "telephone (300-3400 Hz)": am.Compose(
            [
                am.HighPassFilter(min_cutoff_freq=300, max_cutoff_freq=300, min_rolloff=24, max_rolloff=24, p=1.0),
                am.LowPassFilter(min_cutoff_freq=3400, max_cutoff_freq=3400, min_rolloff=24, max_rolloff=24, p=1.0),
            ]
        ),
        "bright mic (+6 dB high shelf)": shelf(am.HighShelfFilter, 3000, 6),
        "dull mic (-6 dB high shelf)": shelf(am.HighShelfFilter, 3000, -6),
        "boomy mic (+6 dB low shelf)": shelf(am.LowShelfFilter, 300, 6),
    }


def sample_clips(corpora_dir: Path, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` random RAVDESS clips, and 16 others (one per actor where possible) for babble."""
    from hf_ser.data.corpora import load_corpus

    ds = load_corpus("ravdess", corpora_dir / "ravdess")
    order = np.random.default_rng(seed).permutation(len(ds))
    return [ds[int(i)]["audio"] for i in order[:n]], [ds[int(i)]["audio"] for i in order[n : n + 16]]


def held_out_clips(model: str | None, corpora_dir: Path, n: int, seed: int = 0, corpus: str = "ravdess") -> list[str]:
    """Up to ``n`` clips (seeded) of the speakers ``model`` was tested on and never trained or calibrated on
    (its ``metrics.json`` speakers: ``corpus:speaker`` keys where it mixed corpora, else speakers of ``corpus``)."""
    from hf_ser.data.corpora import load_corpus
    from hf_ser.inference import resolve_model
    from hf_ser.training.results import RunResult

    folder = resolve_model(model)
    speakers = RunResult.load(folder / "metrics.json").speakers
    heard = {*speakers.get("train", []), *speakers.get("validation", [])}
    tested = [s for s in speakers.get("test", []) if s not in heard]
    if not tested:
        raise ValueError(f"{folder}: its metrics.json names no test speakers, so no clip is known to be held out")
    by_corpus: dict[str, set[str]] = {}
    for key in tested:
        name, _, speaker = key.rpartition(":")
        by_corpus.setdefault(name or corpus, set()).add(speaker)
    clips = []
    for name, wanted in sorted(by_corpus.items()):
        if not (corpora_dir / name).is_dir():
            continue
        ds = load_corpus(name, corpora_dir / name)
        clips += [a for a, sp in zip(ds["audio"], ds["speaker"]) if str(sp) in wanted]
    if not clips:
        raise ValueError(f"{folder}: none of its test speakers' corpora ({sorted(by_corpus)}) is in {corpora_dir}")
    order = np.random.default_rng(seed).permutation(len(clips))
    return [clips[int(i)] for i in order[:n]]


def agreement(
    model: str | None,
    clips: list[str],
    others: list[str] | None = None,
    gains: tuple[int, ...] = GAINS_DB,
    curves: bool = True,
) -> tuple[dict[str, float], dict[str, float]]:
    """(top-label agreement with the clip as recorded, share answered "uncertain") per condition: ``gains`` and
    (``curves``) microphone curves, and, given ``others`` (clips for babble), every condition of the corrupted
    suite. A caller that reads some of them asks for those alone (each condition is a pass over every clip)."""
    from hf_ser import load_classifier
    from hf_ser.audio import load_audio
    from hf_ser.data.corruptions import suite
    from hf_ser.inference import confidence_rule

    clf = load_classifier(model)
    rule = confidence_rule(clf)
    rate = clf.feature_extractor.sampling_rate
    waves = [load_audio(c, rate)[0] for c in clips]

    def tops(batch):
        results = clf(batch, top_k=None, batch_size=16)
        verdicts = [rule.decide({d["label"]: d["score"] for d in r}, w, rate) for r, w in zip(results, batch)]
        return [v.emotion for v in verdicts], [v.uncertain for v in verdicts]

    reference, _ = tops(waves)
    conditions = {f"gain {gain:+d} dB": lambda w, g=gain: with_gain(w, g) for gain in gains}
    if curves:
        conditions |= {name: (lambda w, t=t: t(samples=w, sample_rate=rate)) for name, t in equalisers().items()}
    if others is not None:
        babble = [load_audio(c, rate)[0] for c in others]
        conditions |= {name: (lambda w, t=t: t(samples=w, sample_rate=rate)) for name, t in suite(babble).items()}
    agree, uncertain = {}, {}
    for name, change in conditions.items():
        labels, flags = tops([np.asarray(change(w), np.float32) for w in waves])
        agree[name] = float(np.mean([a == b for a, b in zip(reference, labels)]))
        uncertain[name] = float(np.mean(flags))
    return agree, uncertain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder or bundled name (default: the default model)")
    parser.add_argument("--compare", default=None, help="a second model to measure in the same run")
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument(
        "--held-out", action="store_true", help="each model on clips of its own test speakers (metrics.json)"
    )
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    args = parser.parse_args()
    clips, others = sample_clips(args.corpora_dir, args.clips)
    names = {str(m or "default"): m for m in [args.model] + ([args.compare] if args.compare else [])}
    sets = {n: held_out_clips(m, args.corpora_dir, args.clips) if args.held_out else clips for n, m in names.items()}
    measured = {n: agreement(m, sets[n], others) for n, m in names.items()}
    results = {m: a for m, (a, _) in measured.items()}
    flagged = {m: u for m, (_, u) in measured.items()}
    conditions = list(next(iter(results.values())))
    rows = [[c, *[f"{100 * results[m][c]:.1f} % ({100 * flagged[m][c]:.0f} %)" for m in results]] for c in conditions]
    which = (
        ", ".join(f"{len(v)} clips of {n}'s test speakers" for n, v in sets.items())
        if args.held_out
        else f"{len(clips)} RAVDESS clips"
    )
    print_table(f"top-label agreement with 0 dB (share answered 'uncertain'), {which}", ["condition", *results], rows)
    target = {m: min(r[f"gain {g:+d} dB"] for g in GAINS_DB if -24 <= g <= 6) for m, r in results.items()}
    for model, worst in target.items():
        print(f"{model}: worst agreement from -24 to +6 dB {100 * worst:.1f} % (target >= 95 %)")
    print_json_line(
        "robustness",
        {
            "clips": {n: len(v) for n, v in sets.items()},
            "held_out": args.held_out,
            "agreement": results,
            "uncertain": flagged,
            "worst_-24_to_+6": target,
        },
    )


if __name__ == "__main__":
    main()
