"""Do seed ensembles pay? Average the class probabilities of an experiment's seeds, fold by fold.

    python bench/ensemble.py --experiments ravdess-v5-logmel,ravdess-v15-warp [--corpora-dir ../shared/corpora]

For each fold of each registered experiment run with two or more seeds (``runs/results/<name>/seed_<s>/<fold>``,
written by ``hf-ser results run``), the fold's test speakers (from its ``metrics.json``) are classified by every
seed's model; the ensemble's prediction is the mean of their softmax probabilities. Prints a table of single-seed
and ensemble accuracy / UAR (mean ± std over folds) and a JSON line; ``--out`` writes both to a file, and
``docs/results/ensemble.json`` keeps the record that RESULTS.md renders.
Nothing is trained, and the test speakers never choose anything: the ensemble is fixed in advance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fold_probabilities(fold_dirs: list[Path], dataset) -> tuple[list[np.ndarray], np.ndarray]:
    """Each seed's softmax probabilities on the fold's test speakers, and the true label ids."""
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from hf_ser.data.collate import InMemoryFeatures, SERDataCollator
    from hf_ser.data.features import extract_features, feature_column
    from hf_ser.data.splits import speaker_keys
    from hf_ser.training.results import RunResult

    test_speakers = set(RunResult.load(fold_dirs[0] / "metrics.json").speakers["test"])
    keys = speaker_keys(dataset)
    test = dataset.select([i for i, k in enumerate(keys) if k in test_speakers])
    fe = AutoFeatureExtractor.from_pretrained(fold_dirs[0])
    feats = extract_features(test, fe)
    items = InMemoryFeatures(feats, column=feature_column(fe))
    collate = SERDataCollator(padding_value=fe.padding_value)
    probabilities = []
    for folder in fold_dirs:
        model = AutoModelForAudioClassification.from_pretrained(folder).eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(items), 32):
                batch = collate([items[i] for i in range(start, min(start + 32, len(items)))])
                batch.pop("labels")
                out.append(model(**batch).logits.softmax(-1).numpy())
        probabilities.append(np.concatenate(out))
    return probabilities, np.asarray(items.labels)


def evaluate(name: str, runs: Path, corpora_dir: Path) -> dict:
    from hf_ser.metrics import load_ser_metrics
    from hf_ser.training.config import load_experiment
    from hf_ser.training.run import load_experiment_data

    seeds = sorted(p for p in (runs / name).glob("seed_*") if p.is_dir())
    if len(seeds) < 2:
        raise SystemExit(f"{name}: needs runs of at least two seeds under {runs / name}")
    exp = load_experiment(seeds[0] / next(p.name for p in seeds[0].iterdir() if p.is_dir()) / "experiment.yaml")
    dataset = load_experiment_data(exp, {c: corpora_dir / c for c in exp.corpora})
    metric = load_ser_metrics()
    rows = {"single": [], "ensemble": []}
    for fold in sorted(p.name for p in seeds[0].iterdir() if (p / "model.safetensors").is_file()):
        probabilities, labels = fold_probabilities([s / fold for s in seeds], dataset)
        n = probabilities[0].shape[1]
        for probs in probabilities:
            rows["single"].append(metric.compute(predictions=probs.argmax(1), references=labels, num_labels=n))
        mean = np.mean(probabilities, axis=0)
        rows["ensemble"].append(metric.compute(predictions=mean.argmax(1), references=labels, num_labels=n))
    summary = {"experiment": name, "seeds": len(seeds), "folds": len(rows["ensemble"])}
    for kind, results in rows.items():
        for key in ("accuracy", "uar"):
            values = 100 * np.asarray([r[key] for r in results])
            summary[f"{kind}_{key}"] = [round(float(values.mean()), 2), round(float(values.std()), 2)]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", required=True, help="comma-separated registered experiment names")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "results")
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from hf_ser.publish.results_page import ensemble_lines

    results = [evaluate(name, args.runs, args.corpora_dir) for name in args.experiments.split(",")]
    record = {"bench": "ensemble", "results": results}
    text = "\n".join(ensemble_lines(record)) + json.dumps(record) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    (ROOT / "docs" / "results" / "ensemble.json").write_text(json.dumps(record, indent=2) + "\n")  # RESULTS.md


if __name__ == "__main__":
    main()
