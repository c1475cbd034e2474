"""``fit``: train one model on featured splits with ``transformers.Trainer``, test it, return a RunResult.

Works unchanged under ``accelerate launch``. Training items come from memory (:class:`InMemoryFeatures`),
optionally as random crops with SpecAugment-style masking; validation and test use full-length clips.
"""

from __future__ import annotations

import logging
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

from ..confidence import expected_calibration_error, softmax
from ..data.collate import CONSISTENCY_GROUP, CONSISTENCY_ORIGINAL, InMemoryFeatures, ItemAugmentation, SERDataCollator
from ..data.encoder_cache import STATES_COLUMN
from ..data.features import feature_column
from ..data.splits import speaker_keys
from ..metrics import load_ser_metrics
from ..models.families import family_of_model
from .calibration import calibrate, leave_uncalibrated
from .config import TrainingConfig
from .results import HEADLINE, ClassScores, ConditionScores, Hardware, RunResult, Scores
from .weight_averaging import WeightAveraging

BALANCE_MODES = ("none", "class", "corpus", "corpus_class")
CONSISTENCY_TARGETS = ("mean", "clean")  # training.consistency_target: see TrainingConfig

logger = logging.getLogger("hf_ser.training")


def sample_weights(train: Dataset, balance: str) -> list[float] | None:
    """Per-row sampling weights that make each group equally likely: groups are classes, corpora or
    (corpus, class) pairs (``balance``); ``None`` for ``"none"``. Without them, the largest corpus (TESS:
    2,800 clips of 2 speakers) dominates a pooled training set."""
    if balance not in BALANCE_MODES:
        raise ValueError(f"training.balance must be one of {BALANCE_MODES}, got {balance!r}")
    if balance == "none":
        return None
    classes = [str(v) for v in train["emotion"]]
    corpora = [str(v) for v in train["corpus"]] if "corpus" in train.column_names else [""] * len(classes)
    keys = {"class": classes, "corpus": corpora, "corpus_class": [f"{c}/{e}" for c, e in zip(corpora, classes)]}
    groups = keys[balance]
    counts = {g: groups.count(g) for g in set(groups)}
    return [1.0 / counts[g] for g in groups]


class SERTrainer(Trainer):
    """``Trainer`` with optional mixup of training batches (Zhang et al. 2018, "mixup").

    With ``mixup_alpha > 0`` each training batch is blended with a shuffled copy of itself, with one weight
    ``lam ~ Beta(alpha, alpha)`` per batch: features ``lam*x + (1-lam)*x[perm]``, the union of their attention
    masks, and class-probability targets ``lam*y + (1-lam)*y[perm]`` (the model's loss accepts those).
    Evaluation batches are never mixed. Randomness comes from torch's generator, which the Trainer seeds.
    """

    def __init__(
        self,
        *args,
        mixup_alpha: float = 0.0,
        sample_weights: list[float] | None = None,
        input_name: str = "input_features",
        consistency_weight: float = 0.0,
        consistency_target: str = "mean",
        embedding_consistency_weight: float = 0.0,
        **kwargs,
    ):
        if mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be >= 0, got {mixup_alpha}")
        whole_clips = bool(consistency_weight or embedding_consistency_weight)
        if whole_clips and (mixup_alpha or sample_weights is not None):
            raise ValueError(
                "training.consistency_weight and embedding_consistency_weight batch whole clips: "
                "they cannot go with mixup or balance"
            )
        super().__init__(*args, **kwargs)
        self.mixup_alpha = mixup_alpha
        self.sample_weights = sample_weights
        self.input_name = input_name
        self.consistency_weight = consistency_weight
        if consistency_target not in CONSISTENCY_TARGETS:
            raise ValueError(
                f"consistency_target must be one of {sorted(CONSISTENCY_TARGETS)}, got {consistency_target!r}"
            )
        self.consistency_target = consistency_target
        self.embedding_consistency_weight = embedding_consistency_weight
        self.whole_clips = whole_clips
        if whole_clips and getattr(self.train_dataset, "groups", None) is None:
            raise ValueError("consistency training needs training items that know their clip (groups)")

    def get_train_dataloader(self):
        """With consistency training, batches of whole clips (each with all its augmented copies)."""
        if not self.whole_clips:
            return super().get_train_dataloader()
        batches = ClipBatches(self.train_dataset.groups, self._train_batch_size)
        loader = torch.utils.data.DataLoader(
            self.train_dataset,
            batch_sampler=batches,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        return self.accelerator.prepare(loader)

    def _get_train_sampler(self, train_dataset=None):
        """With ``sample_weights``, draw an epoch's rows with replacement in proportion to them."""
        if self.sample_weights is None:
            return super()._get_train_sampler(train_dataset)
        return torch.utils.data.WeightedRandomSampler(self.sample_weights, len(self.sample_weights))

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        groups = inputs.pop(CONSISTENCY_GROUP, None)
        originals = inputs.pop(CONSISTENCY_ORIGINAL, None)
        if self.mixup_alpha > 0 and model.training and "labels" in inputs:
            inputs = mix_batch(inputs, self.mixup_alpha, self.model.config.num_labels, self.input_name)
        if groups is None or not self.whole_clips or not model.training:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
        if self.embedding_consistency_weight:
            with utterance_vectors(self.model) as pooled:
                loss, outputs = super().compute_loss(model, inputs, return_outputs=True, **kwargs)
            loss = loss + self.embedding_consistency_weight * embedding_spread(pooled[0], groups)
        else:
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True, **kwargs)
        if not self.consistency_weight:
            return (loss, outputs) if return_outputs else loss
        if self.consistency_target == "clean":
            if originals is None:
                raise ValueError("consistency_target 'clean' needs training items that know their originals")
            divergence = divergence_from_original(outputs.logits, groups, originals)
        else:
            divergence = jensen_shannon(outputs.logits, groups)
        loss = loss + self.consistency_weight * divergence
        return (loss, outputs) if return_outputs else loss


class ClipBatches(torch.utils.data.Sampler):
    """Batches of whole clips: every row of about ``batch_size`` rows' worth of clips (a clip and its augmented
    copies share a group), clips shuffled each epoch by torch's generator (which the Trainer seeds)."""

    def __init__(self, groups: list[int], batch_size: int):
        rows: dict[int, list[int]] = {}
        for index, group in enumerate(groups):
            rows.setdefault(group, []).append(index)
        self.clips = list(rows.values())
        size = max(len(c) for c in self.clips)
        self.clips_per_batch = max(1, batch_size // size)

    def __iter__(self):
        order = torch.randperm(len(self.clips)).tolist()
        for start in range(0, len(order), self.clips_per_batch):
            yield [i for c in order[start : start + self.clips_per_batch] for i in self.clips[c]]

    def __len__(self) -> int:
        return -(-len(self.clips) // self.clips_per_batch)


def _clip_means(probs: torch.Tensor, groups: torch.Tensor, rows: torch.Tensor | None = None):
    """Per row, the mean of ``probs`` over its clip's rows (only the rows ``rows`` selects, if given) and how many
    rows that mean is over."""
    _, inverse = torch.unique(groups, return_inverse=True)
    weight = probs.new_ones(len(probs)) if rows is None else rows.to(probs.dtype)
    clips = int(inverse.max()) + 1
    total = probs.new_zeros(clips, probs.shape[1]).index_add_(0, inverse, probs * weight[:, None])
    count = probs.new_zeros(clips).index_add_(0, inverse, weight)
    return (total / count.clamp_min(1.0)[:, None])[inverse], count[inverse]


def jensen_shannon(logits: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean over the rows of clips with two or more rows in the batch of ``KL(p_row || mean p of its clip)``:
    the generalised Jensen-Shannon divergence of AugMix, 0 when a clip and its copies get the same prediction."""
    probs = torch.softmax(logits.float(), dim=-1)
    mean, count = _clip_means(probs, groups)
    divergence = (probs * (probs.clamp_min(1e-7).log() - mean.clamp_min(1e-7).log())).sum(dim=-1)
    shared = count > 1
    return divergence[shared].mean() if shared.any() else logits.sum() * 0.0


def embedding_spread(vectors: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean over the rows of clips with two or more rows in the batch of ``1 - cos(row, mean row of its clip)``:
    the utterance vectors a clip and its copies give, pulled together (0 when they point the same way). Scale-free,
    so its weight does not depend on the size of the vectors."""
    vectors = vectors.float()
    mean, count = _clip_means(vectors, groups)
    spread = 1.0 - torch.nn.functional.cosine_similarity(vectors, mean, dim=-1)
    shared = count > 1
    return spread[shared].mean() if shared.any() else vectors.sum() * 0.0


@contextmanager
def utterance_vectors(model):
    """Within the block, the list it yields receives the input of the model's first classification head on each
    forward pass: the pooled utterance vector (a hook, so the model files stay free of training logic)."""
    seen: list[torch.Tensor] = []
    hook = classification_heads(model)[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    try:
        yield seen
    finally:
        hook.remove()


def divergence_from_original(logits: torch.Tensor, groups: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """Mean over the copies whose clip has its original in the batch of ``KL(p_original || p_copy)``, with no
    gradient through ``p_original`` (the mean over a clip's original rows, should it have two): each copy is pulled
    to the clean clip's answer and the clip itself is left to its label; 0 when every copy answers as its clip."""
    probs = torch.softmax(logits.float(), dim=-1)
    anchor, count = _clip_means(probs.detach(), groups, originals)
    copies = ~originals.bool() & (count > 0)
    if not copies.any():
        return logits.sum() * 0.0
    log_ratio = anchor.clamp_min(1e-7).log() - probs.clamp_min(1e-7).log()
    return (anchor * log_ratio).sum(dim=-1)[copies].mean()


def mix_batch(
    inputs: dict[str, torch.Tensor], alpha: float, num_labels: int, input_name: str = "input_features"
) -> dict[str, torch.Tensor]:
    """One mixup step on a padded batch (see :class:`SERTrainer`)."""
    feats, labels = inputs[input_name], inputs["labels"]
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(feats.shape[0], device=feats.device)
    onehot = labels.float() if labels.dim() == 2 else torch.nn.functional.one_hot(labels.long(), num_labels).float()
    mixed = dict(inputs)
    mixed[input_name] = lam * feats + (1 - lam) * feats[perm]
    mixed["labels"] = lam * onehot + (1 - lam) * onehot[perm]
    if inputs.get("attention_mask") is not None:
        mask = inputs["attention_mask"]
        mixed["attention_mask"] = torch.maximum(mask, mask[perm])
    return mixed


def _per_item(values: list, items) -> list:
    """A per-row list of the training split made as long as ``items``: with row 0's value again for the repeated row
    0 that ``_training_items`` may add."""
    return values + values[: len(items) - len(values)]


def original_rows(train: Dataset) -> list[bool]:
    """Per training row, whether it is an original clip (``augmentation`` "none") rather than a copy of one."""
    return [kind == "none" for kind in train["augmentation"]]


def clip_groups(train: Dataset) -> list[int]:
    """Per training row, the index of the clip it is a copy of (``source_id``, written by augmentation)."""
    if "source_id" not in train.column_names:
        raise ValueError(
            "training.consistency_weight (or embedding_consistency_weight) compares each clip with its augmented "
            "copies: it needs augmentation.copies"
        )
    ids = train["source_id"]
    index = {clip: i for i, clip in enumerate(dict.fromkeys(ids))}
    return [index[clip] for clip in ids]


def parameter_groups(model, learning_rate: float, body_scale: float, encoder_scale: float) -> list[dict]:
    """Optimizer groups at three rates: the classification heads at ``learning_rate``, the rest of the body at
    ``body_scale`` times it (fine-tuning: a slower pretrained body), and a pretrained encoder's trainable layers (as
    the family declares its encoders) at ``body_scale * encoder_scale`` times it. Empty groups are left out."""
    head = {p for h in classification_heads(model) for p in h.parameters()}
    encoder = {p for e in family_of_model(model).encoders(model) for p in e.parameters()} - head
    rates = {
        "head": learning_rate,
        "body": learning_rate * body_scale,
        "encoder": learning_rate * body_scale * encoder_scale,
    }
    members: dict[str, list] = {"head": [], "body": [], "encoder": []}
    for parameter in model.parameters():
        members["head" if parameter in head else "encoder" if parameter in encoder else "body"].append(parameter)
    return [{"params": members[k], "lr": rates[k]} for k in ("body", "encoder", "head") if members[k]]


def classification_heads(model) -> list:
    """The model's classification heads, as its family declares them (every ensemble member's for hf-ser)."""
    return family_of_model(model).heads(model)


def hardware() -> Hardware:
    return Hardware(
        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        cpu=platform.processor() or platform.machine(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
    )


def _compute_metrics_fn(metric, num_labels: int):
    def compute(eval_pred) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        result = metric.compute(predictions=np.argmax(logits, axis=-1), references=labels, num_labels=num_labels)
        return {k: result[k] for k in HEADLINE}

    return compute


def _training_items(
    train: Dataset, column: str, options: ItemAugmentation, batch_size: int, input_name: str = "input_features"
) -> InMemoryFeatures:
    items = InMemoryFeatures(train, column=column, input_name=input_name, augmentation=options)
    if len(items) % batch_size == 1:  # batch norm cannot train on a last batch of one item: repeat row 0
        items.features.append(items.features[0])
        items.labels.append(items.labels[0])
    return items


def speaker_predictions(test: Dataset, predictions: np.ndarray, labels: list[str]) -> dict[str, dict[str, int]]:
    """Per test speaker, how many clips got each label (shows a model that gives one speaker one label)."""
    counts: dict[str, dict[str, int]] = {}
    for speaker, pred in zip(speaker_keys(test), predictions):
        row = counts.setdefault(str(speaker), {})
        row[labels[int(pred)]] = row.get(labels[int(pred)], 0) + 1
    return counts


def model_inputs(model, feature_extractor) -> tuple[str, str]:
    """(the model's input name, the dataset column that holds it): cached encoder states or extracted features."""
    family = family_of_model(model)
    column = STATES_COLUMN if family.encoder_cache else feature_column(feature_extractor)
    return family.input_name(feature_extractor), column


def fit(
    model,
    feature_extractor,
    splits: DatasetDict,
    args: TrainingArguments,
    options: TrainingConfig | None = None,
    resume: bool = False,
) -> tuple[Trainer, RunResult]:
    """Train on ``splits["train"]`` (early stopping on ``validation`` if present), test on ``splits["test"]``.

    ``splits`` hold features (:func:`hf_ser.data.extract_features`) and ``emotion`` labels. Returns the
    Trainer (to save the model) and the typed result.
    """
    started = time.time()
    options = options or TrainingConfig()
    for name in ("frequency_warp", "random_eq_db"):
        if getattr(options, name) and getattr(feature_extractor, "feature_type", None) != "log_mel":
            raise ValueError(f"training.{name} needs features.feature_type=log_mel: MFCCs are not a frequency axis")
    input_name, column = model_inputs(model, feature_extractor)
    labels = splits["train"].features["emotion"].names
    has_val = "validation" in splits
    callbacks = []
    if has_val and options.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=options.early_stopping_patience))
    if options.average_weights_from is not None:
        callbacks.append(WeightAveraging(options.average_weights_from))
    metric = load_ser_metrics()
    optimizers = (None, None)
    if options.body_learning_rate_scale != 1.0 or options.encoder_learning_rate_scale != 1.0:
        groups = parameter_groups(
            model, args.learning_rate, options.body_learning_rate_scale, options.encoder_learning_rate_scale
        )
        optimizers = (torch.optim.AdamW(groups, lr=args.learning_rate, weight_decay=args.weight_decay), None)
    batch = args.per_device_train_batch_size * args.world_size
    items = _training_items(splits["train"], column, options, batch, input_name)
    weights = sample_weights(splits["train"], options.balance)
    if weights is not None:
        weights = _per_item(weights, items)
    if options.consistency_weight or options.embedding_consistency_weight:
        items.groups = _per_item(clip_groups(splits["train"]), items)
        if options.consistency_target == "clean":
            items.originals = _per_item(original_rows(splits["train"]), items)
    trainer = SERTrainer(
        consistency_weight=options.consistency_weight,
        consistency_target=options.consistency_target,
        embedding_consistency_weight=options.embedding_consistency_weight,
        mixup_alpha=options.mixup_alpha,
        sample_weights=weights,
        input_name=input_name,
        optimizers=optimizers,
        model=model,
        args=args,
        train_dataset=items,
        eval_dataset=InMemoryFeatures(splits["validation"], column=column, input_name=input_name) if has_val else None,
        data_collator=SERDataCollator(padding_value=feature_extractor.padding_value, input_name=input_name),
        processing_class=feature_extractor,
        compute_metrics=_compute_metrics_fn(metric, len(labels)),
        callbacks=callbacks,
    )
    train_started = time.time()
    has_checkpoint = Path(args.output_dir).is_dir() and any(Path(args.output_dir).glob("checkpoint-*"))
    if resume and not has_checkpoint:  # it trained from the start without a word
        logger.warning("resume: no checkpoint-* in %s; training from the start", args.output_dir)
    trainer.train(resume_from_checkpoint=True if resume and has_checkpoint else None)
    train_seconds = time.time() - train_started
    # The training items hold every copy's features (read into memory, or for encoder states mapped from their
    # files: held in memory, five copies of three corpora took 22.5 GB of a 24 GB machine and the corrupted suite
    # scored after training went over): testing and scoring need none of them, so the trainer, its callback handler
    # and its accelerator (the prepared dataloaders) let them go.
    trainer.train_dataset = trainer.callback_handler.train_dataloader = None
    trainer.accelerator.free_memory()
    del items
    test_items = InMemoryFeatures(splits["test"], column=column, input_name=input_name)
    prediction = trainer.predict(test_items, metric_key_prefix="test")
    preds = np.argmax(prediction.predictions, axis=-1)
    report = metric.compute(
        predictions=preds, references=prediction.label_ids, num_labels=len(labels), label_names=labels
    )
    epochs_run = trainer.state.epoch or 0
    calibration = None
    if has_val:
        validation = trainer.predict(
            InMemoryFeatures(splits["validation"], column=column, input_name=input_name), metric_key_prefix="val"
        )
        calibration = calibrate(model, validation.predictions, validation.label_ids, prediction)
    else:
        leave_uncalibrated(model)
    result = RunResult(
        test=Scores(**{k: report[k] for k in HEADLINE}),
        per_class={k: ClassScores(**v) for k, v in report["per_class"].items()},
        confusion_matrix=report["confusion_matrix"],
        labels=labels,
        best_validation_uar=trainer.state.best_metric,
        rows={k: len(v) for k, v in splits.items()},
        speakers={k: sorted(set(speaker_keys(v))) for k, v in splits.items()},
        speaker_predictions=speaker_predictions(splits["test"], preds, labels),
        parameters=sum(p.numel() for p in model.parameters()),
        epochs_run=epochs_run,
        train_seconds=train_seconds,
        seconds_per_epoch=train_seconds / max(epochs_run, 1e-9),
        wall_seconds=time.time() - started,
        hardware=hardware(),
        calibration=calibration,
    )
    return trainer, result


def score_conditions(
    trainer: Trainer, model, clean: Dataset, conditions: dict[str, Dataset]
) -> dict[str, ConditionScores]:
    """Score the trained model on the test split under each recording condition (features already extracted,
    rows in the clean split's order): accuracy, UAR, agreement with the clean clip's label, ECE."""
    input_name, column = model_inputs(model, trainer.processing_class)
    metric = load_ser_metrics()
    labels = clean.features["emotion"].names
    temperature = float(getattr(model.config, "temperature", 1.0) or 1.0)

    def predict(data: Dataset):
        out = trainer.predict(InMemoryFeatures(data, column=column, input_name=input_name), metric_key_prefix="c")
        return out.predictions, out.label_ids

    clean_preds = predict(clean)[0].argmax(-1)
    scores = {}
    for name, data in conditions.items():
        if len(data) != len(clean):  # clip-by-clip agreement needs every clip (a skipped one is reported above)
            raise ValueError(f"condition {name!r}: {len(data)} clips have inputs, the clean split {len(clean)}")
        logits, refs = predict(data)
        preds = logits.argmax(-1)
        report = metric.compute(predictions=preds, references=refs, num_labels=len(labels), label_names=labels)
        scores[name] = ConditionScores(
            accuracy=report["accuracy"],
            uar=report["uar"],
            agreement=float(np.mean(preds == clean_preds)),
            ece=expected_calibration_error(softmax(logits, temperature), refs),
        )
    return scores
