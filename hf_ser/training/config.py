"""Experiments described by YAML, typed and validated with pydantic (unknown keys and wrong types are named).

A file may start with ``extends: base.yaml`` (relative to itself): it is deep-merged over that file, so a
per-corpus overlay holds only what differs.

    data:         {corpus: ravdess, merge_calm: false}
    features:     {n_mfcc: 40}                       # feature extractor arguments
    model:        {model_type: ser, preset: default}  # config fields of that model type
    augmentation: {copies: [[{name: AddGaussianSNR, p: 1.0}]]}
    protocol:     {name: speaker-kfold, folds: 5, test_size: 0.2, val_size: 0.1, seed: 0}
    training:     {max_train_frames: 300, learning_rate: 2.0e-3, num_train_epochs: 40}

``training`` holds our own options (below) and any ``transformers.TrainingArguments`` field, passed
through to it as is.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import typing
from functools import cache
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from huggingface_hub.errors import StrictDataclassError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from transformers import TrainingArguments

from ..data.augment import AugmentConfig
from ..data.collate import ItemAugmentation
from ..data.corpora import CORPORA
from ..models.families import family_of
from .protocols import PROTOCOLS, ProtocolSettings

# Keys of the ``model`` section that hf-ser reads itself (the rest are the model config's fields).
HF_SER_MODEL_KEYS = ("model_type", "preset", "init_from", "encoder")
# Extractor steps a model may take when it answers but not when it trains (``evaluation.features``): cutting the
# silence at a clip's ends changes no feature's shape or meaning, only which frames a clip gives.
ANSWERING_STEPS = ("trim_db", "trim_margin")


class ExperimentConfigError(ValueError):
    """An experiment file or override with an unknown key, a wrong type or a bad value (the key is named)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    corpus: str | list[str] = "ravdess"  # one corpus, or several (unified labels)
    merge_calm: bool = False  # RAVDESS calm -> neutral (the paper's 7 classes)
    common_only: bool = False  # keep only labels every corpus has
    exclude_labels: list[str] = []  # unified labels left out (e.g. boredom for the general model)
    speaker_adaptive: bool = False  # standardise features per speaker from their own clips (reported apart)
    corpus_adaptive: bool = False  # standardise per corpus from all of its clips in the split (reported apart)
    # adaptive variants: a training clip's augmented copies form groups of their own, one per copy (speaker x
    # condition), as a test speaker recorded through one line does; off, a group pools its clean clips and copies
    adapt_per_condition: bool = False
    user_data: str | None = None  # fine-tuning on a user's own clips: their description (corpus is then unused)
    # fine-tuning: the model it started from (a bundled model's name, a Hub id, a local folder's name, or scratch)
    init_from: str | None = None
    sampling_rate: int | None = None  # decode/augment rate; None = the feature extractor's

    @model_validator(mode="after")
    def _one_adaptation(self):
        if self.speaker_adaptive and self.corpus_adaptive:
            raise ValueError("data.speaker_adaptive and data.corpus_adaptive exclude each other: choose one group")
        if self.adapt_per_condition and not (self.speaker_adaptive or self.corpus_adaptive):
            raise ValueError(
                "data.adapt_per_condition splits the adaptive groups by augmentation: it needs "
                "data.speaker_adaptive or data.corpus_adaptive"
            )
        return self

    @property
    def adaptive_group(self) -> str | None:
        """The column whose groups' own statistics standardise the inputs (speaker, corpus), or None."""
        return "speaker" if self.speaker_adaptive else "corpus" if self.corpus_adaptive else None

    @field_validator("corpus")
    @classmethod
    def _known(cls, value):
        for name in [value] if isinstance(value, str) else value:
            if name not in CORPORA:
                raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
        return value


class ProtocolConfig(_Section):
    name: str = "holdout"
    folds: int = Field(5, ge=2)
    test_size: float = Field(0.2, gt=0, lt=1)
    val_size: float = Field(0.1, ge=0, lt=1)  # fraction of (training) speakers held out for early stopping
    seed: int = 0
    test_corpus: str | None = None  # cross-corpus: the corpus of data.corpus that is tested; the others train
    # cross-corpus protocols: corpora of data.corpus that only add training clips: never tested, and they do not
    # narrow the labels the tested corpora share (their clips of other labels are left out, and logged)
    training_only: list[str] = []

    @field_validator("name")
    @classmethod
    def _registered(cls, value):
        if value not in PROTOCOLS:
            raise ValueError(f"unknown protocol {value!r}; known: {', '.join(PROTOCOLS)}")
        return value

    def settings(self) -> ProtocolSettings:
        return ProtocolSettings(
            self.folds, self.test_size, self.val_size, self.seed, self.test_corpus, tuple(self.training_only)
        )


class AugmentationConfig(_Section):
    copies: list[list[dict[str, Any]]] = []
    keep_original: bool = True

    @model_validator(mode="after")
    def _buildable(self):
        self.build().validate()
        return self

    def build(self) -> AugmentConfig:
        return AugmentConfig(copies=self.copies, keep_original=self.keep_original)


@cache
def _training_argument_types() -> dict[str, TypeAdapter]:
    return {k: TypeAdapter(v) for k, v in typing.get_type_hints(TrainingArguments).items()}


class TrainingConfig(ItemAugmentation):
    """The one typed object of training options: our own (these fields, and the per-item augmentation of
    :class:`~hf_ser.data.collate.ItemAugmentation` it extends), which ``fit`` reads as they are; every other key
    must be a ``TrainingArguments`` field (passed through)."""

    model_config = ConfigDict(extra="allow")

    early_stopping_patience: int | None = None  # epochs without validation-UAR gain; None = train to the end
    class_weighted_loss: bool = False  # inverse-frequency class weights in the loss
    num_proc: int = 2  # processes for augmentation and feature extraction
    body_learning_rate_scale: float = 1.0  # learning rate of everything but the classifier head, as a fraction
    # learning rate of a pretrained encoder's trainable layers (model.trainable_encoder_layers) as a fraction of the
    # body's: fine-tuned transformer layers want a rate far below a freshly initialised head's (1e-3)
    encoder_learning_rate_scale: float = Field(1.0, gt=0)
    mixup_alpha: float = Field(0.0, ge=0)  # mixup of training batches, lam ~ Beta(alpha, alpha); 0 = off
    balance: Literal["none", "class", "corpus", "corpus_class"] = "none"  # equal-probability sampling of groups
    # distillation: a trained model folder whose calibrated probabilities on the training clips become the targets
    # ("{fold}" is replaced by the fold's name, so each fold gets the teacher that never heard its test speakers)
    teacher: str | None = None
    distillation_weight: float = Field(0.5, ge=0, le=1)  # target = w * teacher + (1 - w) * one-hot label
    # consistency between a clip and its augmented copies (AugMix's Jensen-Shannon term, Hendrycks et al. 2020):
    # batches hold whole clips with all their copies, and the loss adds w * JS divergence of their predictions
    consistency_weight: float = Field(0.0, ge=0)
    # what the copies are held to: "mean", AugMix's JS (every row, the clip too, pulled to their mean prediction);
    # "clean", KL(p_clip || p_copy) with no gradient through the clip's own p (each copy pulled to the clean
    # clip's answer, which is what top-label agreement with the clean clip measures; the clip learns from its label)
    consistency_target: Literal["mean", "clean"] = "mean"
    # the same for the pooled utterance vectors (the classification head's input) rather than the predictions: the
    # loss adds w * mean cosine distance of each row's vector from its clip's mean vector (a clip and its copies)
    embedding_consistency_weight: float = Field(0.0, ge=0)
    # stochastic weight averaging: the final weights are the mean of the weights after every step from this
    # fraction of the run's steps on (hf_ser.training.weight_averaging); None = the last step's weights
    average_weights_from: float | None = Field(None, ge=0, lt=1)

    @model_validator(mode="after")
    def _pass_through(self):
        types = _training_argument_types()
        for key, value in (self.model_extra or {}).items():
            if key not in types:
                raise ValueError(
                    f"unknown key 'training.{key}' (neither an hf-ser option nor a TrainingArguments field)"
                )
            try:
                self.model_extra[key] = types[key].validate_python(value)
            except ValidationError as err:
                raise ValueError(
                    f"'training.{key}': {err.errors()[0]['msg'].lower()}, got {type(value).__name__} {value!r}"
                ) from None
        return self

    def trainer_arguments(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def constructor_arguments(cls) -> list[str]:
    """The named arguments of ``cls.__init__`` (what a config section or a saved preprocessor may pass)."""
    return [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "kwargs")]


class EvaluationConfig(_Section):
    # the test split is also scored under each of these recording conditions (hf_ser.data.corruptions.suite;
    # "all" for every one): accuracy, UAR, agreement with the clean clip's label and calibration error
    corruptions: list[str] = []
    # extractor settings the trained model answers with, over ``features``: applied to the validation and test clips
    # (so its temperature is fitted and its test figures measured as it will answer) and saved in its
    # preprocessor config, but not to the training clips (or their cache). Only the steps in ANSWERING_STEPS.
    features: dict[str, Any] = {}

    @field_validator("features")
    @classmethod
    def _answering_steps_only(cls, value):
        other = sorted(set(value) - set(ANSWERING_STEPS))
        if other:
            raise ValueError(
                f"evaluation.features.{other[0]}: only steps taken when answering may differ from training "
                f"({', '.join(ANSWERING_STEPS)}); set it under 'features' instead"
            )
        return value

    @field_validator("corruptions")
    @classmethod
    def _known_conditions(cls, value):
        from ..data.corruptions import condition_names

        known = condition_names()
        if value == ["all"]:
            return known
        for name in value:
            if name not in known:
                raise ValueError(f"unknown corruption {name!r}; known: {', '.join(known)} (or all)")
        return value


class Experiment(_Section):
    data: DataConfig = DataConfig()
    features: dict[str, Any] = {}
    model: dict[str, Any] = {}
    augmentation: AugmentationConfig = AugmentationConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    @model_validator(mode="after")
    def _constructible(self):
        extractor_class = self.feature_extractor_class()
        unknown = sorted(set(self.features) - set(constructor_arguments(extractor_class)))
        if unknown:
            raise ValueError(f"unknown key 'features.{unknown[0]}' for {extractor_class.__name__}")
        config_class = self.family.config_class
        known = {f.name for f in dataclasses.fields(config_class)} | set(HF_SER_MODEL_KEYS)
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise ValueError(f"unknown key 'model.{unknown[0]}' for {config_class.__name__}")
        test_corpus = self.protocol.test_corpus
        if test_corpus is not None and test_corpus not in self.corpora:
            raise ValueError(f"'protocol.test_corpus': {test_corpus!r} is not one of data.corpus {self.corpora}")
        unknown = sorted(set(self.protocol.training_only) - set(self.corpora))
        if unknown:
            raise ValueError(f"protocol.training_only: {unknown} not in data.corpus {self.corpora}")
        if self.family.encoder_cache and self.model.get("trainable_encoder_layers", 0) and self.data.adaptive_group:
            # the top layers run again from the cached state below them, which an adaptive variant's cache holds
            # standardised per group: not the input those layers were trained on
            raise ValueError(
                f"'model.trainable_encoder_layers': not with data.{self.data.adaptive_group}_adaptive (its cache "
                "holds standardised states, which the trainable layers cannot run from); use one or the other"
            )
        sections = (
            ("features", self.feature_extractor),
            ("evaluation.features", self.answering_feature_extractor),
            ("model", lambda: self.build_model_config(["a"])),
        )
        for section, build in sections:
            try:
                build()
            except (StrictDataclassError, TypeError, ValueError) as err:
                raise ValueError(f"'{section}': {err}") from None
        return self

    @property
    def corpora(self) -> list[str]:
        return [self.data.corpus] if isinstance(self.data.corpus, str) else list(self.data.corpus)

    @property
    def model_type(self) -> str:
        return self.model.get("model_type", "ser")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @property
    def family(self):
        return family_of(self.model_type)

    @property
    def encoder_source(self) -> str:
        """Where a cached-encoder family's pretrained encoder comes from (``model.encoder``; default the PyPI one)."""
        return str(self.model.get("encoder", "pypi"))

    def feature_extractor_class(self):
        return self.family.feature_extractor_class

    def feature_extractor(self):
        """The extractor of the training clips."""
        return self.feature_extractor_class()(**self.features)

    def answering_feature_extractor(self):
        """The extractor the trained model is saved with and scored by: ``features`` with ``evaluation.features``
        over them (the training one when there are none)."""
        return self.feature_extractor_class()(**{**self.features, **self.evaluation.features})

    def build_model_config(self, labels: list[str], class_weights: list[float] | None = None):
        """The model's config: ``model`` fields (``preset`` picks a classmethod ``<preset>_preset``)."""
        values = {k: v for k, v in self.model.items() if k not in HF_SER_MODEL_KEYS}
        preset = self.model.get("preset", "default")
        extractor = self.feature_extractor()
        values["id2label"] = dict(enumerate(labels))
        values["label2id"] = {name: i for i, name in enumerate(labels)}
        config_class = self.family.config_class
        if self.model_type == "ser":
            values.setdefault("num_mfcc", extractor.feature_size)
            values["class_weights"] = class_weights
            if preset == "paper":
                values.setdefault(
                    "num_frames", extractor.num_frames(int(round(extractor.max_duration * extractor.sampling_rate)))
                )
        if preset != "default":
            factory = getattr(config_class, f"{preset}_preset", None)
            if factory is None:
                raise ValueError(f"model.preset: {config_class.__name__} has no {preset!r} preset")
            return factory(**values)
        return config_class(**values)

    def protocol_settings(self) -> ProtocolSettings:
        return self.protocol.settings()

    def training_arguments(self, output_dir: Path, has_validation: bool, distributed: bool) -> TrainingArguments:
        """``TrainingArguments``: our evaluation/saving policy plus every pass-through key of ``training``."""
        t = self.training
        values = dict(
            output_dir=str(output_dir / "checkpoints"),
            eval_strategy="epoch" if has_validation else "no",
            save_strategy="epoch",
            save_total_limit=2,
            load_best_model_at_end=has_validation,
            metric_for_best_model="uar" if has_validation else None,
            greater_is_better=True,
            report_to="none",
            remove_unused_columns=False,
            dataloader_num_workers=0,
            use_cpu=not torch.cuda.is_available(),
            ddp_backend="gloo" if distributed and not torch.cuda.is_available() else None,
        )
        values.update(t.trainer_arguments())
        values.setdefault("data_seed", values.get("seed", 42))
        return TrainingArguments(**values)


# ------------------------------------------------------------------------------------------- loading
def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{where}'")
        elif e["type"] == "value_error":
            message = e["msg"].removeprefix("Value error, ")
            lines.append(message if message.startswith(("'", "unknown key")) or not where else f"'{where}': {message}")
        else:
            value = e.get("input")
            lines.append(f"'{where}': {e['msg'].lower()}, got {type(value).__name__} {value!r}")
    return "; ".join(lines)


def experiment_from_dict(raw: dict) -> Experiment:
    """Build and validate an :class:`Experiment`; every problem names its key."""
    try:
        return Experiment.model_validate(copy.deepcopy(raw or {}))
    except ValidationError as err:
        raise ExperimentConfigError(_format(err)) from None
    except (TypeError, ValueError) as err:  # constructors of the extractor or model config
        raise ExperimentConfigError(f"invalid experiment: {err}") from err


def apply_override(raw: dict, assignment: str) -> dict:
    """Apply ``section.key=value`` (value parsed as YAML) to a raw experiment dict, in place.

    ``section.key+=[...]`` appends the items of a YAML list to the list already there (from the files or an
    earlier override), so "one more augmentation copy" is one value rather than the whole list spelt out again.
    """
    if "=" not in assignment:
        raise ExperimentConfigError(f"--set expects section.key=value or section.key+=[...], got {assignment!r}")
    path, text = assignment.split("=", 1)
    append = path.endswith("+")
    keys = path.removesuffix("+").strip().split(".")
    target = raw
    for key in keys[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            raise ExperimentConfigError(f"--set {path}: '{key}' is not a section")
    value = yaml.safe_load(text)
    if append:
        name = ".".join(keys)
        current = target.get(keys[-1], [])
        if not isinstance(current, list):
            raise ExperimentConfigError(f"--set {name}+=: {name} is {current!r}, not a list to append to")
        if not isinstance(value, list):
            raise ExperimentConfigError(f"--set {name}+=: expected a YAML list of items to append, got {text!r}")
        value = [*current, *value]
    target[keys[-1]] = value
    return raw


def _merge(base: dict, overlay: dict) -> dict:
    out = dict(base)
    for key, value in overlay.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_experiment_file(path: str | Path) -> dict:
    """The raw dict of a YAML experiment, with its ``extends:`` chain merged in."""
    path = Path(path)
    if not path.is_file():
        near = [c for c in (path.with_suffix(".yaml"), Path("configs") / path.with_suffix(".yaml")) if c.is_file()]
        hint = f"; did you mean {near[0]}?" if near and path.suffix != ".yaml" else ""
        raise ExperimentConfigError(f"experiment file {path} not found (a YAML file's path){hint}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ExperimentConfigError(f"{path}: not valid YAML ({err})") from err
    parent = raw.pop("extends", None)
    return _merge(read_experiment_file(path.parent / parent), raw) if parent else raw


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read a YAML experiment (and what it extends), apply ``--set`` overrides, validate."""
    raw = read_experiment_file(path)
    for assignment in overrides or []:
        apply_override(raw, assignment)
    try:
        return experiment_from_dict(raw)
    except ExperimentConfigError as err:
        raise ExperimentConfigError(f"{path}: {err}") from err
