"""Training and evaluation with ``transformers.Trainer`` (works unchanged under ``accelerate launch``).

``fit`` trains one split and writes a run folder; ``run_protocol`` runs a whole protocol (holdout,
speaker k-fold, leave-one-speaker-out, utterance, paper) and aggregates the folds; ``run_cross_corpus``
trains on one corpus and tests on another over their shared labels.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

from .augment import AugmentConfig, augment
from .corpora import load_corpora, load_corpus, unified_label_set, unify_labels
from .data import (
    SERDataCollator,
    extract_features,
    leave_one_speaker_out,
    mark_split,
    paper_protocol,
    speaker_folds,
    speaker_independent_split,
    utterance_split,
)
from .experiment import Experiment
from .metrics import load_ser_metrics
from .modeling_ser import SERForAudioClassification
from .reports import save_confusion_matrix, write_class_report

logger = logging.getLogger("hf_ser.training")

HEADLINE = ("accuracy", "uar", "macro_f1", "weighted_f1")
DataDirs = str | Path | dict[str, str | Path]


# ------------------------------------------------------------------------------------------------ data
def _dir_for(data_dir: DataDirs, corpus: str) -> Path:
    if isinstance(data_dir, dict):
        if corpus not in data_dir:
            raise ValueError(f"no data folder given for corpus {corpus!r} (have {sorted(data_dir)})")
        return Path(data_dir[corpus])
    return Path(data_dir)


def load_experiment_data(exp: Experiment, data_dir: DataDirs) -> Dataset:
    """The experiment's corpus with its own labels, or, when labels are merged or corpora mixed, ``load_corpora``."""
    corpora = exp.corpora
    if len(corpora) == 1 and not (exp.data.merge_calm or exp.data.common_only):
        return load_corpus(corpora[0], _dir_for(data_dir, corpora[0]))
    dirs = {c: _dir_for(data_dir, c) for c in corpora}
    return load_corpora(corpora, dirs, merge_calm=exp.data.merge_calm, common_only=exp.data.common_only)


def protocol_splits(exp: Experiment, dataset: Dataset, protocol: str, folds: int | None = None):
    """``[(fold_name, DatasetDict), ...]`` for a protocol; the paper protocol's train part is pre-augmented."""
    p = exp.protocol
    if protocol == "holdout":
        return [("holdout", speaker_independent_split(dataset, p.test_size, p.val_size, p.seed))]
    if protocol == "speaker-kfold":
        k = folds or p.folds
        return [(f"fold_{i}", s) for i, s in enumerate(speaker_folds(dataset, k, p.seed, p.val_size))]
    if protocol == "loso":
        return [(f"speaker_{s.replace(':', '_')}", d) for s, d in leave_one_speaker_out(dataset, p.val_size, p.seed)]
    if protocol == "utterance":
        return [("utterance", utterance_split(dataset, p.test_size, p.val_size, p.seed))]
    if protocol == "paper":
        return [
            (
                "paper",
                paper_protocol(
                    dataset,
                    exp.augmentation,
                    test_size=0.2,
                    seed=42,
                    sampling_rate=_decode_rate(exp),
                    num_proc=exp.training.num_proc,
                ),
            )
        ]
    raise ValueError(f"unknown protocol {protocol!r}")


def _decode_rate(exp: Experiment) -> int:
    return exp.data.sampling_rate or exp.feature_extractor().sampling_rate


def _for_trainer(ds: Dataset) -> Dataset:
    return ds.rename_column("emotion", "labels").select_columns(["input_features", "labels"]).with_format("numpy")


def _class_weights(labels: list[int], num_labels: int) -> list[float]:
    counts = np.bincount(np.asarray(labels), minlength=num_labels).astype(float)
    weights = np.where(counts > 0, counts.sum() / (num_labels * np.maximum(counts, 1)), 0.0)
    return [float(w) for w in weights]


# -------------------------------------------------------------------------------------------- training
def training_arguments(exp: Experiment, output_dir: Path, has_validation: bool) -> TrainingArguments:
    t = exp.training
    return TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=t.epochs,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        lr_scheduler_type=t.lr_scheduler,
        optim=t.optimizer,
        seed=t.seed,
        data_seed=t.seed,
        eval_strategy="epoch" if has_validation else "no",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=has_validation,
        metric_for_best_model="uar" if has_validation else None,
        greater_is_better=True,
        logging_steps=t.logging_steps,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if _distributed() and not torch.cuda.is_available() else None,
    )


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _compute_metrics_fn(metric, num_labels: int):
    def compute(eval_pred) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        result = metric.compute(predictions=np.argmax(logits, axis=-1), references=labels, num_labels=num_labels)
        return {k: result[k] for k in HEADLINE}

    return compute


def fit(
    exp: Experiment,
    splits: DatasetDict,
    output_dir: str | Path,
    resume: bool = False,
    augmented: bool = False,
) -> dict:
    """Train on ``splits["train"]`` (early stopping on ``validation``), test on ``splits["test"]``; write the run.

    The run folder gets the model (``save_pretrained`` with ``auto_map``) and feature extractor,
    ``metrics.json``, ``class_report.{md,json}``, ``confusion_matrix.png``, ``experiment.yaml`` and the
    training log (``train_log.jsonl``). Returns the metrics dict.
    """
    output_dir = Path(output_dir)
    started = time.time()
    fe = exp.feature_extractor()
    has_val = "validation" in splits
    args = training_arguments(exp, output_dir, has_val)
    with args.main_process_first(desc="augment and extract features"):
        splits = DatasetDict(dict(splits))
        copies = AugmentConfig.from_value(exp.augmentation)
        if copies.copies and not augmented:
            splits["train"] = augment(
                splits["train"],
                copies,
                seed=exp.training.seed,
                sampling_rate=_decode_rate(exp),
                num_proc=exp.training.num_proc,
            )
        feats = extract_features(splits, fe, num_proc=exp.training.num_proc)
    labels = feats["train"].features["emotion"].names
    weights = _class_weights(feats["train"]["emotion"], len(labels)) if exp.training.class_weighted_loss else None
    model = SERForAudioClassification(exp.model_config(labels, weights))
    metric = load_ser_metrics()
    callbacks = []
    if has_val and exp.training.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=exp.training.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_avoid_single_item_batch(_for_trainer(feats["train"]), exp.training.batch_size * args.world_size),
        eval_dataset=_for_trainer(feats["validation"]) if has_val else None,
        data_collator=SERDataCollator(padding_value=fe.padding_value),
        processing_class=fe,
        compute_metrics=_compute_metrics_fn(metric, len(labels)),
        callbacks=callbacks,
    )
    train_started = time.time()
    trainer.train(resume_from_checkpoint=True if resume and _has_checkpoint(args.output_dir) else None)
    train_seconds = time.time() - train_started
    prediction = trainer.predict(_for_trainer(feats["test"]), metric_key_prefix="test")
    preds = np.argmax(prediction.predictions, axis=-1)
    report = metric.compute(
        predictions=preds, references=prediction.label_ids, num_labels=len(labels), label_names=labels
    )
    epochs_run = trainer.state.epoch or 0
    results = {
        "test": {k: report[k] for k in HEADLINE},
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
        "labels": labels,
        "best_validation_uar": trainer.state.best_metric,
        "rows": {k: len(v) for k, v in feats.items()},
        "speakers": {k: sorted(set(v["speaker"])) for k, v in feats.items()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs_run": epochs_run,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / max(epochs_run, 1e-9),
        "wall_seconds": time.time() - started,
        "hardware": hardware(),
    }
    if trainer.is_world_process_zero():
        trainer.save_model(str(output_dir))
        _write_run(output_dir, exp, results, trainer.state.log_history)
        shutil.rmtree(args.output_dir, ignore_errors=True)
    return results


def _avoid_single_item_batch(train: Dataset, batch_size: int) -> Dataset:
    """Repeat one row when the last training batch would hold a single item: batch norm cannot train on it."""
    if len(train) % batch_size != 1:
        return train
    logger.info(
        "training set of %d rows: repeating row 0 so no batch of %d holds a single item", len(train), batch_size
    )
    from datasets import concatenate_datasets

    return concatenate_datasets([train, train.select([0])]).with_format("numpy")


def _has_checkpoint(folder: str) -> bool:
    return Path(folder).is_dir() and any(p.name.startswith("checkpoint-") for p in Path(folder).iterdir())


def hardware() -> dict:
    return {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def _write_run(output_dir: Path, exp: Experiment, results: dict, log_history: list[dict]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    (output_dir / "experiment.yaml").write_text(exp.to_yaml())
    with open(output_dir / "train_log.jsonl", "w") as handle:
        for entry in log_history:
            handle.write(json.dumps(entry) + "\n")
    write_class_report(output_dir, results)
    save_confusion_matrix(
        np.asarray(results["confusion_matrix"]), results["labels"], output_dir / "confusion_matrix.png"
    )


# ------------------------------------------------------------------------------------------- protocols
def summarize(fold_results: dict[str, dict]) -> dict:
    """Mean ± std (population) of each headline metric over folds, plus the summed confusion matrix."""
    summary = {"folds": {name: r["test"] for name, r in fold_results.items()}}
    for key in HEADLINE:
        values = np.array([r["test"][key] for r in fold_results.values()])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std())}
    first = next(iter(fold_results.values()))
    summary["labels"] = first["labels"]
    summary["confusion_matrix"] = np.sum([r["confusion_matrix"] for r in fold_results.values()], axis=0).tolist()
    summary["parameters"] = first["parameters"]
    summary["wall_seconds"] = float(sum(r["wall_seconds"] for r in fold_results.values()))
    summary["seconds_per_epoch"] = float(np.mean([r["seconds_per_epoch"] for r in fold_results.values()]))
    summary["hardware"] = first["hardware"]
    return summary


def _write_summary(output_dir: Path, title: str, summary: dict) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [f"# {title}", "", "| fold | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for name, metrics in summary["folds"].items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * metrics[k]:.2f}" for k in HEADLINE) + " |")
    lines.append(
        "| **mean ± std** | "
        + " | ".join(f"**{100 * summary[k]['mean']:.2f} ± {100 * summary[k]['std']:.2f}**" for k in HEADLINE)
        + " |"
    )
    (output_dir / "summary.md").write_text("\n".join(lines) + "\n")
    save_confusion_matrix(
        np.asarray(summary["confusion_matrix"]), summary["labels"], output_dir / "confusion_matrix.png"
    )
    logger.info("\n".join(lines))


def run_protocol(
    exp: Experiment,
    data_dir: DataDirs,
    output_dir: str | Path,
    protocol: str | None = None,
    folds: int | None = None,
) -> dict:
    """Run every fold of a protocol, each in ``output_dir/<fold>``; write ``summary.{json,md}``; return it."""
    protocol = protocol or exp.protocol.name
    output_dir = Path(output_dir)
    dataset = load_experiment_data(exp, data_dir)
    results = {}
    for name, splits in protocol_splits(exp, dataset, protocol, folds):
        logger.info("protocol %s: %s (%s)", protocol, name, {k: len(v) for k, v in splits.items()})
        results[name] = fit(exp, splits, output_dir / name, augmented=protocol == "paper")
    summary = {"protocol": protocol, **summarize(results)}
    _write_summary(output_dir, f"{protocol} on {'+'.join(exp.corpora)}", summary)
    return summary


def run_cross_corpus(
    exp: Experiment,
    train_corpus: str,
    train_dir: str | Path,
    test_corpus: str,
    test_dir: str | Path,
    output_dir: str | Path,
) -> dict:
    """Train on ``train_corpus`` (validation speakers held out of it), test on all of ``test_corpus``.

    Both use the unified labels they share (e.g. RAVDESS → EMO-DB: neutral happy sad angry fearful disgust).
    """
    labels = unified_label_set([train_corpus, test_corpus], merge_calm=exp.data.merge_calm, common_only=True)
    source = unify_labels(load_corpus(train_corpus, train_dir), train_corpus, exp.data.merge_calm, labels)
    target = unify_labels(load_corpus(test_corpus, test_dir), test_corpus, exp.data.merge_calm, labels)
    held = speaker_independent_split(
        source, test_size=max(exp.protocol.val_size, 0.05), val_size=0.0, seed=exp.protocol.seed
    )
    splits = DatasetDict(
        {
            "train": held["train"],
            "validation": mark_split(held["test"], "validation"),
            "test": mark_split(target, "test"),
        }
    )
    result = fit(exp, splits, output_dir)
    summary = {
        "protocol": f"cross-corpus {train_corpus} -> {test_corpus}",
        "labels": labels,
        **summarize({f"{train_corpus}->{test_corpus}": result}),
    }
    _write_summary(Path(output_dir), summary["protocol"], summary)
    return summary
