"""Small helpers shared by the benchmark scripts: timing, table and JSON-line output."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


def time_call(fn: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


def print_json_line(name: str, payload: dict) -> None:
    print("BENCH_JSON " + json.dumps({"bench": name, "machine": machine(), **payload}, sort_keys=True))


def top_labels(classifier, waves: list) -> list[str]:
    """Each clip's top label from a pipeline (batches of 16)."""
    return [r[0]["label"] for r in classifier(waves, top_k=1, batch_size=16)]


def label_scores(truth: list[str], predicted: list[str], reference: list[str]) -> dict[str, float]:
    """Accuracy, UAR and top-label agreement with ``reference`` (the same pipeline's answers to the clips as
    recorded), in %: what the benches on validation clips report for each condition."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    return {
        "accuracy": 100 * accuracy_score(truth, predicted),
        "uar": 100 * balanced_accuracy_score(truth, predicted),
        "agreement": 100 * float(np.mean([a == b for a, b in zip(reference, predicted)])),
    }


def ravdess_folder(corpora_dir, files: int, folder) -> tuple[list[str], float]:
    """Copy the first ``files`` RAVDESS clips into ``folder`` (a batch run's input); (their paths, hours of audio)."""
    import shutil
    from pathlib import Path

    import soundfile as sf

    from hf_ser.data.corpora import load_corpus

    paths = load_corpus("ravdess", Path(corpora_dir) / "ravdess")["audio"][:files]
    Path(folder).mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copy(p, Path(folder) / Path(p).name)
    return paths, sum(sf.info(p).duration for p in paths) / 3600


def of_speakers(data, speakers: list[str]):
    """The rows of ``speakers``, named as metrics.json names them: ``speaker_keys`` of each split, so ``corpus:speaker``
    when that split mixes corpora, else the bare speaker (hence both forms are matched here, not
    ``speaker_keys`` of the whole dataset)."""
    wanted = set(speakers)
    return data.filter(
        lambda c, s: f"{c}:{s}" in wanted or s in wanted, input_columns=["corpus", "speaker"], desc="speakers"
    )


@dataclass
class ModelSpeakers:
    """A trained model's own validation, training and test clips (datasets rows), as its metrics.json names them.
    ``test`` is for benches that only report (bench_held_out_suite.py); nothing is chosen on it."""

    folder: Path
    validation: object
    train: object
    test: object


def model_speakers(model: str, corpora_dir: Path) -> ModelSpeakers:
    """The validation, training and test speakers' clips of ``model`` (a bundled name, a release or a fold model of a
    k-fold run: ``runs/results/<experiment>/seed_0/fold_0``), read from its metrics.json rather than by rebuilding (and
    re-augmenting) its protocol's splits. Diagnostics that may inform a choice use the first two, never the test
    speakers, which only report-only benches read."""
    from hf_ser.inference import resolve_model
    from hf_ser.training.config import load_experiment
    from hf_ser.training.results import RunResult
    from hf_ser.training.run import load_experiment_data

    folder = resolve_model(model)
    exp = load_experiment(folder / "experiment.yaml")
    result = RunResult.load(folder / "metrics.json")
    data = load_experiment_data(exp, {c: Path(corpora_dir) / c for c in exp.corpora}, result.protocol)
    validation = of_speakers(data, result.speakers.get("validation", []))
    train = of_speakers(data, result.speakers.get("train", []))
    if not len(validation) or not len(train):
        raise ValueError(f"{folder}: its metrics.json names no validation (or training) speakers found in the data")
    return ModelSpeakers(folder, validation, train, of_speakers(data, result.speakers.get("test", [])))


@dataclass
class ValidationClips:
    """A bundled model's classifier and its validation speakers' clips (decoded at its rate), with their labels."""

    classifier: object
    rate: int
    truth: list[str]
    waves: list


def validation_clips(model: str, corpora_dir: Path) -> ValidationClips:
    from hf_ser import load_classifier
    from hf_ser.audio import load_audio

    validation = model_speakers(model, corpora_dir).validation
    classifier = load_classifier(model)
    rate = classifier.feature_extractor.sampling_rate
    names = validation.features["emotion"].names
    truth = [names[i] for i in validation["emotion"]]
    return ValidationClips(classifier, rate, truth, [load_audio(a, rate)[0] for a in validation["audio"]])


def validation_sets(description: str) -> dict[str, ValidationClips]:
    """Parse ``--models`` / ``--corpora-dir`` (the benches that measure bundled models on their validation clips)
    and load each model with its clips, in the order given."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", nargs="+", default=["ser-general", "ser-whisper-general"])
    parser.add_argument("--corpora-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpora")
    args = parser.parse_args()
    return {model: validation_clips(model, args.corpora_dir) for model in args.models}


@dataclass
class ValidationReport:
    """What a bench on bundled models' validation clips collects: a result per (model, setting), each with a table
    row that starts with the model and its clip count; printed as a table and a BENCH_JSON line carrying the clip
    counts and the results."""

    models: dict[str, ValidationClips]
    measured: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    rows: list[list[str]] = field(default_factory=list)

    @classmethod
    def for_models(cls, description: str) -> ValidationReport:
        """The models named on the command line, each with its validation clips (:func:`validation_sets`)."""
        return cls(validation_sets(description))

    def add(self, model: str, setting: str, result: dict[str, float], cells: list[str]) -> None:
        self.measured.setdefault(model, {})[setting] = result
        self.rows.append([model, str(len(self.models[model].waves)), *cells])

    def print(self, bench: str, title: str, header: list[str], **extra) -> None:
        print_table(title, ["model", "clips", *header], self.rows)
        clips = {model: len(loaded.waves) for model, loaded in self.models.items()}
        print_json_line(bench, {"clips": clips, **extra, "results": self.measured})
