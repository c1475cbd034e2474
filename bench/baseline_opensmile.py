"""The classic SER baseline on exactly our folds: openSMILE functionals + linear SVM.

    python bench/baseline_opensmile.py                       # every protocol below, both feature sets
    python bench/baseline_opensmile.py --only emodb-loso

For each protocol the folds come from hf-ser's own protocol registry with the same config and seed as our
runs (``configs/<corpus>.yaml``), so the test speakers are identical. The SVM trains on every non-test
speaker (our models hold some of them out for validation). Features are openSMILE's ComParE_2016 or
eGeMAPSv02 functionals, standardised on the training rows; ``LinearSVC(C=1e-3)`` is fixed in advance (never
tuned on test speakers). Prints a table and a BENCH_JSON line; writes ``docs/results/baseline-*.json``.

    python bench/baseline_opensmile.py --corruptions --only ravdess-speaker-5fold --feature-sets eGeMAPSv02

also scores every test fold under each recording condition of ``hf_ser.data.corruptions.suite()`` (babble from the
fold's training speakers), as the runner's ``evaluation.corruptions`` does for our models: the SVM is trained on
clean features only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import print_json_line, print_table  # noqa: E402

from hf_ser.metrics import load_ser_metrics  # noqa: E402
from hf_ser.training.config import load_experiment  # noqa: E402
from hf_ser.training.results import HEADLINE, MeanStd  # noqa: E402
from hf_ser.training.run import load_experiment_data, protocol_folds  # noqa: E402

PROTOCOLS = {
    # name: (config, overrides, corpus folders)
    "ravdess-speaker-5fold": ("configs/v0.1/ravdess.yaml", [], ["ravdess"]),
    "emodb-loso": ("configs/v0.1/emodb.yaml", [], ["emodb"]),
    "tess-loso": ("configs/v0.1/tess.yaml", [], ["tess"]),
}
CROSS = {
    # leave one corpus out over the unified 7 labels: (train corpora, test corpus)
    "general-lococ-emodb": (["ravdess", "tess"], "emodb"),
    "general-lococ-ravdess": (["emodb", "tess"], "ravdess"),
    "general-lococ-tess": (["ravdess", "emodb"], "tess"),
}
FEATURE_SETS = ("ComParE_2016", "eGeMAPSv02")


def smile_features(paths: list[str], feature_set: str, cache: Path) -> np.ndarray:
    """Functionals per file, cached by path in ``cache`` (bench/out, never committed)."""
    import opensmile
    import soundfile as sf

    store = {}
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        store = dict(zip(data["paths"].tolist(), data["X"]))
    missing = [p for p in paths if p not in store]
    if missing:
        smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, feature_set), feature_level=opensmile.FeatureLevel.Functionals
        )
        for path in missing:
            x, sr = sf.read(path, dtype="float32", always_2d=True)
            store[path] = smile.process_signal(x.mean(axis=1), sr).to_numpy()[0].astype(np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, paths=np.array(list(store)), X=np.stack(list(store.values())))
    return np.stack([store[p] for p in paths])


def fit_svm(train_x, train_y):
    """StandardScaler + LinearSVC(C=1e-3), fixed in advance (never tuned on test speakers)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    return make_pipeline(StandardScaler(), LinearSVC(C=1e-3, max_iter=20000)).fit(train_x, train_y)


def svm_scores(train_x, train_y, test_x, test_y, labels: list[str]) -> dict:
    metric = load_ser_metrics()
    return metric.compute(predictions=fit_svm(train_x, train_y).predict(test_x), references=test_y, label_names=labels)


def corrupted_features(split, condition: str, sources, feature_set: str) -> np.ndarray:
    """Functionals of every clip of ``split`` under ``condition`` (not cached: the audio exists only here)."""
    import opensmile

    from hf_ser.data.corruptions import corrupt_split

    smile = opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set), feature_level=opensmile.FeatureLevel.Functionals
    )
    corrupted = corrupt_split(split, condition, 16000, sources)
    return np.stack(
        [smile.process_signal(np.asarray(a, np.float32), 16000).to_numpy()[0] for a in corrupted["array"]]
    ).astype(np.float32)


def run_protocol(name: str, corpora_dir: Path, feature_set: str, corruptions: bool = False) -> tuple[dict, dict]:
    """(scores per fold, and with ``corruptions`` {condition: {accuracy, uar, agreement}} as mean ± std over
    folds, else {}); one SVM per fold serves the clean and the corrupted test clips."""
    from hf_ser.data.corruptions import babble_sources, condition_names

    config, overrides, corpora = PROTOCOLS[name]
    exp = load_experiment(ROOT / config, overrides)
    dataset = load_experiment_data(exp, {c: corpora_dir / c for c in corpora})
    folds, _ = protocol_folds(exp, dataset)
    labels = dataset.features["emotion"].names
    x_all = smile_features(dataset["audio"], feature_set, ROOT / "bench" / "out" / "opensmile" / f"{feature_set}.npz")
    index = {p: i for i, p in enumerate(dataset["audio"])}
    y = np.asarray(dataset["emotion"])
    metric = load_ser_metrics()
    results, scores = {}, {c: [] for c in (condition_names() if corruptions else [])}
    for fold, splits in folds:
        train_rows = [index[p] for part in splits if part != "test" for p in splits[part]["audio"]]
        test_rows = [index[p] for p in splits["test"]["audio"]]
        model = fit_svm(x_all[train_rows], y[train_rows])
        clean = model.predict(x_all[test_rows])
        results[fold] = metric.compute(predictions=clean, references=y[test_rows], label_names=labels)
        sources = babble_sources(splits["train"], 16000) if corruptions else None
        for condition in scores:
            preds = model.predict(corrupted_features(splits["test"], condition, sources, feature_set))
            report = metric.compute(predictions=preds, references=y[test_rows], label_names=labels)
            scores[condition].append(
                {"accuracy": report["accuracy"], "uar": report["uar"], "agreement": float(np.mean(preds == clean))}
            )
    corrupted = {c: {k: MeanStd.of([f[k] for f in fs]).model_dump() for k in fs[0]} for c, fs in scores.items()}
    return results, corrupted


def run_cross(name: str, corpora_dir: Path, feature_set: str) -> dict:
    from hf_ser.data.corpora import load_corpora

    sources, target = CROSS[name]
    labels = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    dirs = {c: corpora_dir / c for c in [*sources, target]}
    cache = ROOT / "bench" / "out" / "opensmile" / f"{feature_set}.npz"
    train = load_corpora(sources, dirs, merge_calm=True, labels=labels)
    test = load_corpora([target], dirs, merge_calm=True, labels=labels)
    test_labels = [labels[i] for i in sorted(set(test["emotion"]))]
    keep = sorted(set(test["emotion"]))  # score on the labels the held-out corpus has
    remap = {old: new for new, old in enumerate(keep)}
    rows = [i for i, e in enumerate(train["emotion"]) if e in remap]
    x_train = smile_features([train["audio"][i] for i in rows], feature_set, cache)
    y_train = np.asarray([remap[train["emotion"][i]] for i in rows])
    x_test = smile_features(test["audio"], feature_set, cache)
    y_test = np.asarray([remap[e] for e in test["emotion"]])
    return {f"{'+'.join(sources)}->{target}": svm_scores(x_train, y_train, x_test, y_test, test_labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--only", default=None, help="comma-separated protocol names")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--feature-sets", default=",".join(FEATURE_SETS))
    parser.add_argument("--corruptions", action="store_true", help="also score under the recording conditions")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else [*PROTOCOLS, *CROSS]
    rows, payload = [], {}
    for name in names:
        for feature_set in args.feature_sets.split(","):
            started = time.time()
            if name in CROSS:
                folds, corrupted = run_cross(name, args.corpora_dir, feature_set), {}
            else:
                folds, corrupted = run_protocol(name, args.corpora_dir, feature_set, args.corruptions)
            record = {
                "experiment": f"baseline-{feature_set}-{name}",
                "protocol": name,
                "method": f"openSMILE {feature_set} functionals + StandardScaler + LinearSVC(C=1e-3)",
                "folds": {f: {k: r[k] for k in HEADLINE} for f, r in folds.items()},
                **{k: MeanStd.of([r[k] for r in folds.values()]).model_dump() for k in HEADLINE},
            }
            if corrupted:
                record["corrupted"] = corrupted
            record["wall_seconds"] = time.time() - started
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"baseline-{feature_set}-{name}.json").write_text(json.dumps(record, indent=2))
            acc, uar = MeanStd(**record["accuracy"]), MeanStd(**record["uar"])
            rows.append([name, feature_set, str(len(folds)), acc.percent(), uar.percent()])
            payload[f"{feature_set}/{name}"] = {"accuracy": acc.mean, "uar": uar.mean}
    print_table(
        "openSMILE functionals + linear SVM, our folds", ["protocol", "features", "folds", "accuracy", "UAR"], rows
    )
    print_json_line("baseline_opensmile", payload)


if __name__ == "__main__":
    main()
