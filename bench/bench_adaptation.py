"""How many of a speaker's clips does speaker adaptation need?

    python bench/bench_adaptation.py [--model ser-whisper-general-adaptive] [--reference ser-whisper-general]

On the adaptive model's **validation** speakers (its ``metrics.json`` names them; never its test speakers, so a
minimum the package warns at may be chosen on these numbers; ``--test-speakers`` measures a model that has none on
its test speakers instead, for the report only), each speaker's clips are split once into an adaptation pool and
an evaluation half. The model is adapted (``hf_ser.adaptation.adapt_classifier``, the path ``--adapt-on`` takes) on
k clips drawn from the pool (k = 1, 2, 4, 8, 16, three draws each, and the whole pool) and classifies the evaluation
half; the speaker-independent reference model classifies the same clips. Prints accuracy and UAR (mean ± std over
the draws) as a table and a BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import model_speakers, of_speakers, print_json_line, print_table  # noqa: E402

CLIPS = (1, 2, 4, 8, 16)
DRAWS = 3


def main() -> None:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    from hf_ser import load_classifier
    from hf_ser.adaptation import adapt_classifier
    from hf_ser.data.splits import speaker_keys
    from hf_ser.training.results import RunResult

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ser-whisper-general-adaptive")
    parser.add_argument("--reference", default="ser-whisper-general", help="a speaker-independent model")
    parser.add_argument("--test-speakers", action="store_true", help="measure on test speakers (report only)")
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    args = parser.parse_args()

    if args.test_speakers:  # a model whose metrics name no validation speakers: its test speakers, report only
        from hf_ser.inference import resolve_model
        from hf_ser.training.config import load_experiment
        from hf_ser.training.run import load_experiment_data

        folder = resolve_model(args.model)
        result = RunResult.load(folder / "metrics.json")
        exp = load_experiment(folder / "experiment.yaml")
        data = load_experiment_data(exp, {c: args.corpora_dir / c for c in exp.corpora}, result.protocol)
        rows = of_speakers(data, result.speakers["test"])
    else:
        rows = model_speakers(args.model, args.corpora_dir).validation
    names = rows.features["emotion"].names
    keys = speaker_keys(rows)
    rng = np.random.default_rng(0)
    pools, evaluation = {}, {}
    for key in sorted(set(keys)):
        mine = [i for i, k in enumerate(keys) if k == key]
        rng.shuffle(mine)
        half = len(mine) // 2
        pools[key] = [rows[i]["audio"] for i in mine[:half]]
        evaluation[key] = [(rows[i]["audio"], names[rows[i]["emotion"]]) for i in mine[half:]]
    truth = [label for key in sorted(evaluation) for _, label in evaluation[key]]

    reference = load_classifier(args.reference)
    ref_pred = [
        r[0]["label"]
        for key in sorted(evaluation)
        for r in reference([path for path, _ in evaluation[key]], top_k=1, batch_size=8)
    ]
    measured = {"reference": {"accuracy": [100 * accuracy_score(truth, ref_pred)]}}
    measured["reference"]["uar"] = [100 * balanced_accuracy_score(truth, ref_pred)]
    adaptive = load_classifier(args.model)
    for k in (*CLIPS, None):
        accuracy, uar = [], []
        for draw in range(1 if k is None else DRAWS):
            predicted = []
            for key in sorted(evaluation):
                pool = pools[key]
                chosen = pool if k is None else list(np.random.default_rng(draw).permutation(pool)[: min(k, len(pool))])
                adapt_classifier(adaptive, chosen)
                clips = [path for path, _ in evaluation[key]]
                predicted += [r[0]["label"] for r in adaptive(clips, top_k=1, batch_size=8)]
            accuracy.append(100 * accuracy_score(truth, predicted))
            uar.append(100 * balanced_accuracy_score(truth, predicted))
        measured["whole pool" if k is None else f"{k} clip{'s' if k > 1 else ''}"] = {"accuracy": accuracy, "uar": uar}
    pool_sizes = sorted(len(p) for p in pools.values())
    print_table(
        f"{args.model} adapted on k clips of each of its {len(pools)} "
        f"{'test' if args.test_speakers else 'validation'} speakers (pools of {pool_sizes[0]}-{pool_sizes[-1]} "
        f"clips), scored on the other {len(truth)} clips; reference: {args.reference}, not adapted",
        ["adapted on", "accuracy", "UAR", "draws"],
        [
            [name, _mean_std(v["accuracy"]), _mean_std(v["uar"]), str(len(v["accuracy"]))]
            for name, v in measured.items()
        ],
    )
    print_json_line(
        "adaptation",
        {
            "model": args.model,
            "reference": args.reference,
            "speakers": "test" if args.test_speakers else "validation",
            "evaluation_clips": len(truth),
            "measured": {
                name: {m: float(np.mean(v[m])) for m in ("accuracy", "uar")}
                | {f"{m}_std": float(np.std(v[m])) for m in ("accuracy", "uar")}
                for name, v in measured.items()
            },
        },
    )


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.1f}" + (f" ± {np.std(values):.1f}" if len(values) > 1 else "")


if __name__ == "__main__":
    main()
