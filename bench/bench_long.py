"""How long may a recording be before one label for all of it stops meaning much?

    python bench/bench_long.py [--models ser-general ser-whisper-general]

On each model's **validation** speakers (its ``metrics.json`` names them; never its test speakers, so a longest
length for the "uncertain" rule may be chosen on these numbers), one speaker's clips are joined (0.3 s of a noise
floor 80 dB under full scale between them) into recordings of 15 to 120 s, the way an hour-long call reaches
``hf-ser predict`` or a batch run in one piece:

- **one emotion**: clips of one speaker and one emotion (cycled where they run out): does length alone move the
  answer? The label is the clips' emotion.
- **mixed**: clips of one speaker, emotions in turn: no one label is right, so what matters is how often the
  model still answers with a label (not "uncertain") and how high its top score is.

The Whisper family takes at most 30 s in one piece (longer files get an error row that points to ``--segments``),
so its lengths stop there. Prints a table per model and a BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import model_speakers, print_json_line, print_table  # noqa: E402

SECONDS = (15.0, 30.0, 60.0, 120.0)
GAP_SECONDS = 0.3


def joined(waves: list[np.ndarray], seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``waves`` in turn (cycled), each followed by a gap of faint noise, until ``seconds`` are filled."""
    gap = int(GAP_SECONDS * rate)
    pieces, total, i = [], 0, 0
    while total < seconds * rate:
        wave = waves[i % len(waves)]
        pieces += [wave, (1e-4 * rng.standard_normal(gap)).astype(np.float32)]
        total += len(wave) + gap
        i += 1
    return np.concatenate(pieces)[: int(seconds * rate)]


def interleaved(by_emotion: dict[str, list[np.ndarray]]) -> list[np.ndarray]:
    """One clip of each emotion in turn (round robin), so any stretch of the recording holds several."""
    queues = [list(v) for _, v in sorted(by_emotion.items())]
    out = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


def main() -> None:
    from hf_ser import load_classifier
    from hf_ser.audio import load_audio
    from hf_ser.inference import confidence_rule, longest_clip_seconds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ser-general", "ser-whisper-general"])
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    args = parser.parse_args()

    payload = {}
    for model in args.models:
        validation = model_speakers(model, args.corpora_dir).validation
        clf = load_classifier(model)
        rule = confidence_rule(clf)
        rate = clf.feature_extractor.sampling_rate
        longest = longest_clip_seconds(clf)
        names = validation.features["emotion"].names
        groups: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
        for corpus, speaker, emotion, audio in zip(
            validation["corpus"], validation["speaker"], validation["emotion"], validation["audio"]
        ):
            groups[f"{corpus}:{speaker}"][names[emotion]].append(load_audio(audio, rate)[0])
        rng = np.random.default_rng(0)
        measured: dict[str, dict[str, float | int]] = {}
        lengths = [s for s in SECONDS if longest is None or s <= longest]
        whole = [(w, e) for g in groups.values() for e, ws in g.items() for w in ws]
        for seconds in (None, *lengths):
            one = (
                [(w, e) for w, e in whole]
                if seconds is None
                else [(joined(ws, seconds, rate, rng), e) for g in groups.values() for e, ws in g.items()]
            )
            mixed = (
                [] if seconds is None else [(joined(interleaved(g), seconds, rate, rng), None) for g in groups.values()]
            )
            for kind, items in (("one emotion", one), ("mixed", mixed)):
                if not items:
                    continue
                scores = [{d["label"]: d["score"] for d in clf(w, top_k=None)} for w, _ in items]
                verdicts = [rule.decide(s, w, rate) for s, (w, _) in zip(scores, items)]
                row = {
                    "recordings": len(items),
                    "mean_top_score": float(np.mean([max(s.values()) for s in scores])),
                    "answered": 100 * float(np.mean([not v.uncertain for v in verdicts])),
                }
                if kind == "one emotion":
                    row["accuracy"] = 100 * float(np.mean([max(s, key=s.get) == e for s, (_, e) in zip(scores, items)]))
                measured[f"{'whole clips' if seconds is None else f'{seconds:g} s'}, {kind}"] = row
        print_table(
            f"{model} on recordings joined from its validation speakers' clips ({len(groups)} speakers)",
            ["recording", "recordings", "accuracy", "mean top score", "answered with a label"],
            [
                [
                    k,
                    str(v["recordings"]),
                    f"{v['accuracy']:.1f}" if "accuracy" in v else "–",
                    f"{v['mean_top_score']:.2f}",
                    f"{v['answered']:.1f} %",
                ]
                for k, v in measured.items()
            ],
        )
        payload[model] = {"speakers": len(groups), "longest": longest, "results": measured}
    print_json_line("long", payload)


if __name__ == "__main__":
    main()
