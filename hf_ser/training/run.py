"""Running experiments: load data, split by protocol, augment, extract features, fit, write run folders.

:func:`train` is the one entry point (the CLI's ``train`` and ``evaluate``, results runs, release builds and
fine-tuning call it): it runs every fold of a protocol (cross-corpus ones included) through ``run_split``,
which trains one split into a run folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict
from transformers import AutoModelForAudioClassification, set_seed

from ..data.augment import augment
from ..data.collate import SOFT_LABELS
from ..data.corpora import load_corpora, load_corpus, unified_label_set
from ..data.corruptions import babble_sources, corrupt_split
from .config import Experiment
from .distill import distillation_targets
from .inputs import model_inputs_of
from .protocols import PROTOCOLS, AugmentSettings, get_protocol
from .reports import save_confusion_matrix, summary_markdown, write_class_report
from .results import ProtocolResult, RunResult, summarize
from .trainer import fit, score_conditions

logger = logging.getLogger("hf_ser.training")
DataDirs = str | Path | dict[str, str | Path]


def _dir_for(data_dir: DataDirs, corpus: str) -> Path:
    if isinstance(data_dir, dict):
        if corpus not in data_dir:
            raise ValueError(f"no data folder given for corpus {corpus!r} (have {sorted(data_dir)})")
        return Path(data_dir[corpus])
    return Path(data_dir)


def unified_labels(exp: Experiment, corpora: list[str], common_only: bool) -> list[str]:
    """The unified labels of ``corpora`` (all, or the shared ones) minus ``data.exclude_labels``."""
    chosen = unified_label_set(corpora, merge_calm=exp.data.merge_calm, common_only=common_only)
    return [x for x in chosen if x not in exp.data.exclude_labels]


def load_experiment_data(exp: Experiment, data_dir: DataDirs, protocol: str | None = None) -> Dataset:
    """The experiment's corpus with its own labels, or, when labels are merged or corpora mixed, unified ones
    (only those every corpus shares when asked, or when the protocol, the config's unless named, tests one
    corpus with models trained on others)."""
    corpora = exp.corpora
    d = exp.data
    common = d.common_only or get_protocol(protocol or exp.protocol.name).across_corpora
    if len(corpora) == 1 and not (d.merge_calm or common or d.exclude_labels):
        return load_corpus(corpora[0], _dir_for(data_dir, corpora[0]))
    if exp.protocol.training_only and not get_protocol(protocol or exp.protocol.name).across_corpora:
        raise ValueError("protocol.training_only is for the cross-corpus protocols (their other corpora are tested)")
    labels = unified_labels(exp, [c for c in corpora if c not in exp.protocol.training_only], common)
    dirs = {c: _dir_for(data_dir, c) for c in corpora}
    return load_corpora(corpora, dirs, merge_calm=d.merge_calm, labels=labels)


def decode_rate(exp: Experiment) -> int:
    return exp.data.sampling_rate or exp.feature_extractor().sampling_rate


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _class_weights(labels: list[int], num_labels: int) -> list[float]:
    counts = np.bincount(np.asarray(labels), minlength=num_labels).astype(float)
    weights = np.where(counts > 0, counts.sum() / (num_labels * np.maximum(counts, 1)), 0.0)
    return [float(w) for w in weights]


def build_model(exp: Experiment, labels: list[str], class_weights: list[float] | None = None, seed: int = 0):
    """A fresh model of ``model.model_type`` for these labels (any type registered with the Auto classes); a
    pretrained-encoder family gets its encoder's weights from ``model.encoder``.

    Its initial weights are drawn after ``set_seed(seed)``: the Trainer seeds only what happens once it exists (data
    order, dropout), so without this a model built before it starts from whatever state the process's generators
    are in, and the same seed gives another model in every process.
    """
    config = exp.build_model_config(labels, class_weights)
    set_seed(seed)
    if not exp.family.encoder_cache:
        return AutoModelForAudioClassification.from_config(config)
    from ..encoders.whisper import encoder_fields, load_whisper_encoder

    loaded = load_whisper_encoder(exp.encoder_source)
    config.whisper = encoder_fields(loaded.config)
    config.encoder_provenance = loaded.provenance
    model = AutoModelForAudioClassification.from_config(config)
    model.encoder.whisper.load_state_dict(loaded.encoder.state_dict())
    return model


def run_split(
    exp: Experiment,
    splits: DatasetDict,
    output_dir: str | Path,
    resume: bool = False,
    augmented: bool = False,
    model=None,
    fold: str = "",
) -> RunResult:
    """Augment the training part, extract features, train, test; write the run folder; return its result.

    The run folder gets the model (``save_pretrained`` with ``auto_map``) and feature extractor,
    ``metrics.json``, ``class_report.{md,json}``, ``confusion_matrix.png``, ``experiment.yaml`` and the
    training log (``train_log.jsonl``). ``model`` is a prebuilt model for these labels (fine-tuning);
    by default a fresh one is built from the experiment's ``model`` section. ``fold`` names the split (it fills
    ``{fold}`` in ``training.teacher``, the distillation teacher of this split).
    """
    output_dir = Path(output_dir)
    fe = exp.feature_extractor()
    # the model is saved with, tuned on and tested with the extractor it will answer with (evaluation.features)
    answering = exp.answering_feature_extractor() if exp.evaluation.features else fe
    args = exp.training_arguments(output_dir, "validation" in splits, _distributed())
    with args.main_process_first(desc="augment and extract features"):
        splits = DatasetDict(dict(splits))
        copies = exp.augmentation.build()
        if copies.copies and not augmented:
            splits["train"] = augment(
                splits["train"], copies, seed=args.seed, sampling_rate=decode_rate(exp), num_proc=exp.training.num_proc
            )
        labels = splits["train"].features["emotion"].names
        weights = _class_weights(splits["train"]["emotion"], len(labels)) if exp.training.class_weighted_loss else None
        model = model if model is not None else build_model(exp, labels, weights, seed=args.seed)
        # the "uncertain" rule's band check stands down for a model trained on telephone-band copies; the flag
        # describes this training's clips (one trained on from the Whisper default without them had kept it)
        model.config.trained_band_limited = copies.includes("TelephoneBand")
        if exp.family.encoder_cache:  # the frozen encoder fills the state cache on the device training will use:
            model.to(args.device)  # the Trainer moves the model only later, so a GPU's encoding ran on the CPU
        feats = (
            model_inputs_of(exp, splits, fe, model)
            if answering is fe
            else _inputs_answered(exp, splits, fe, answering, model)
        )
        if exp.training.teacher:  # distillation: the teacher of this fold labels the training clips
            teacher = exp.training.teacher.replace("{fold}", fold)
            targets = distillation_targets(teacher, splits, exp, labels)
            feats["train"] = feats["train"].add_column(SOFT_LABELS, [t.tolist() for t in targets])
        adaptive_extractor = exp.data.adaptive_group is not None and not exp.family.encoder_cache
        if adaptive_extractor:
            answering.speaker_adaptive = True  # the saved extractor refuses audio until adapted to a speaker
        elif exp.data.adaptive_group:
            model.config.adaptive_states = True  # the saved model refuses audio until given a group's statistics
    trainer, result = fit(model, answering, feats, args, exp.training, resume=resume)
    if exp.evaluation.corruptions:
        if adaptive_extractor:
            answering.speaker_adaptive = False  # corrupted clips take the same path as the clean ones did
        babble = any("babble" in c for c in exp.evaluation.corruptions)
        sources = babble_sources(splits["train"], fe.sampling_rate) if babble else None  # decoded once
        result.corrupted = _score_corrupted(exp, trainer, model, answering, splits, feats, "test", sources)
        if "validation" in splits:
            result.corrupted_validation = _score_corrupted(
                exp, trainer, model, answering, splits, feats, "validation", sources
            )
        if adaptive_extractor:
            answering.speaker_adaptive = True
    if trainer.is_world_process_zero():
        trainer.save_model(str(output_dir))
        write_run(output_dir, exp, result, trainer.state.log_history)
        shutil.rmtree(args.output_dir, ignore_errors=True)
    return result


def _inputs_answered(exp: Experiment, splits: DatasetDict, fe, answering, model) -> DatasetDict:
    """The training split's inputs by the training extractor ``fe``, the others' by ``answering`` (the extractor
    the model is saved with)."""
    held_out = DatasetDict({k: v for k, v in splits.items() if k != "train"})
    feats = model_inputs_of(exp, DatasetDict({"train": splits["train"]}), fe, model)
    feats.update(model_inputs_of(exp, held_out, answering, model))
    return DatasetDict({k: feats[k] for k in splits})


def _score_corrupted(
    exp: Experiment, trainer, model, fe, splits: DatasetDict, feats: DatasetDict, part: str, sources
) -> dict:
    """Split ``part`` under each of ``evaluation.corruptions``; ``sources``: the babble clips (training side)."""
    import tempfile

    conditions = {}
    # a corrupted clip's encoder states serve this scoring once: kept in a temporary folder, not hf-ser's cache
    # (Whisper-base states are ~1 MB a clip: 13 conditions of one RAVDESS fold filled 6 GB of cache)
    with tempfile.TemporaryDirectory(prefix="hf-ser-corrupted-") as scratch:
        for condition in exp.evaluation.corruptions:
            corrupted = corrupt_split(splits[part], condition, fe.sampling_rate, sources, seed=exp.protocol.seed)
            inputs = model_inputs_of(exp, DatasetDict({part: corrupted}), fe, model, cache_dir=scratch)
            conditions[condition] = inputs[part]
        return score_conditions(trainer, model, feats[part], conditions)


def write_run(output_dir: Path, exp: Experiment, result: RunResult, log_history: list[dict]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    result.save(output_dir / "metrics.json")
    (output_dir / "experiment.yaml").write_text(exp.to_yaml())
    with open(output_dir / "train_log.jsonl", "w") as handle:
        for entry in log_history:
            handle.write(json.dumps(entry) + "\n")
    write_class_report(output_dir, result)
    save_confusion_matrix(np.asarray(result.confusion_matrix), result.labels, output_dir / "confusion_matrix.png")


def write_summary(output_dir: Path, title: str, summary: ProtocolResult) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    summary.save(output_dir / "summary.json")
    text = summary_markdown(title, summary)
    (output_dir / "summary.md").write_text(text)
    save_confusion_matrix(np.asarray(summary.confusion_matrix), summary.labels, output_dir / "confusion_matrix.png")
    logger.info(text)


def protocol_folds(exp: Experiment, dataset: Dataset, protocol: str | None = None, folds: int | None = None):
    """``[(fold name, DatasetDict)]`` of a protocol (the config's unless named), and the protocol."""
    spec = get_protocol(protocol or exp.protocol.name)
    settings = exp.protocol.settings()
    if folds:
        settings = dataclasses.replace(settings, folds=folds)
    augmentation = AugmentSettings(
        exp.augmentation.build(),
        seed=settings.seed,
        sampling_rate=decode_rate(exp),
        num_proc=exp.training.num_proc,
    )
    return spec.folds(dataset, settings, augmentation), spec


TrainingData = DataDirs | Dataset | DatasetDict


@dataclasses.dataclass(frozen=True)
class TrainingOutcome:
    """What :func:`train` returns: the protocol's summary and each fold's run (``metrics.json``) by fold name."""

    summary: ProtocolResult
    runs: dict[str, RunResult]

    @property
    def run(self) -> RunResult:
        """The run of a one-split protocol."""
        if len(self.runs) != 1:
            raise ValueError(f"{len(self.runs)} folds were run, not one: read .runs")
        return next(iter(self.runs.values()))


def train(
    exp: Experiment,
    data: TrainingData,
    output_dir: str | Path,
    protocol: str | None = None,
    *,
    folds: int | None = None,
    only_folds: list[int] | None = None,
    model=None,
    resume: bool = False,
) -> TrainingOutcome:
    """Train and test ``exp`` on every fold of ``protocol`` (the config's unless named).

    ``data`` is the corpus folder (or ``{corpus: folder}``), a loaded ``Dataset`` that the protocol splits, or a
    ``DatasetDict`` that already is one split (``train``, ``test``, optionally ``validation``: fine-tuning's own
    clips), trained as it is. A protocol with one split writes its run folder in ``output_dir``; one with several
    writes ``output_dir/<fold>`` for each (only the ``only_folds`` indices when screening) and
    ``summary.{json,md}``. ``model`` is a prebuilt model for one split (fine-tuning); ``resume`` continues one
    split from its last Trainer checkpoint.
    """
    output_dir = Path(output_dir)
    spec = get_protocol(protocol or exp.protocol.name)
    if folds is not None and not spec.numbered_folds:  # `evaluate --folds 100` on LOSO ran LOSO without a word
        numbered = [name for name, p in PROTOCOLS.items() if p.numbered_folds]
        raise ValueError(
            f"folds={folds}: protocol {spec.name!r} makes its own folds; a number of folds is for {numbered}"
        )
    if isinstance(data, DatasetDict):
        fold_splits, augmented = [("split", data)], False
    else:
        dataset = data if isinstance(data, Dataset) else load_experiment_data(exp, data, spec.name)
        fold_splits, _ = protocol_folds(exp, dataset, spec.name, folds)
        augmented = spec.augments_before_split
    if only_folds is not None:
        outside = sorted(set(only_folds) - set(range(len(fold_splits))))
        if outside or not only_folds:
            raise ValueError(
                f"only_folds {only_folds}: protocol {spec.name!r} has {len(fold_splits)} fold(s) here, "
                f"indices 0 to {len(fold_splits) - 1}" + (f" (no fold {outside})" if outside else "")
            )
        fold_splits = [f for index, f in enumerate(fold_splits) if index in only_folds]
    single = len(fold_splits) == 1 and only_folds is None
    if not single and (model is not None or resume):
        raise ValueError(f"model= and resume= train one split; protocol {spec.name!r} has {len(fold_splits)} here")
    results = {}
    for name, splits in fold_splits:
        logger.info("protocol %s: %s (%s)", spec.name, name, {k: len(v) for k, v in splits.items()})
        folder = output_dir if single else output_dir / name
        results[name] = run_split(exp, splits, folder, resume=resume, augmented=augmented, model=model, fold=name)
    summary = summarize(spec.name, exp.corpora, results)
    if not single:  # one split: its metrics.json is the whole record
        write_summary(output_dir, f"{spec.name} on {'+'.join(exp.corpora)}", summary)
    return TrainingOutcome(summary, results)
