"""Experiments described by YAML: parsing, validation (unknown keys and wrong types are named), overrides.

data:         {corpus: ravdess, merge_calm: false}
features:     {n_mfcc: 40}                      # SERFeatureExtractor arguments
model:        {preset: default, pooling: stats}  # SERConfig fields (preset: default | paper)
augmentation: {copies: [[{name: paper_noise}]]}
protocol:     {name: holdout, folds: 5, test_size: 0.2, val_size: 0.1, seed: 0}
training:     {learning_rate: 1.0e-3, epochs: 30, batch_size: 32}
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from .augment import AugmentConfig
from .configuration_ser import SERConfig
from .feature_extraction_ser import SERFeatureExtractor

PROTOCOLS = ("holdout", "speaker-kfold", "loso", "utterance", "paper")


class ExperimentConfigError(ValueError):
    """An experiment file or override with an unknown key, a wrong type or a bad value (the key is named)."""


@dataclass
class DataSection:
    corpus: str | list[str] = "ravdess"  # one corpus, or several (unified labels)
    merge_calm: bool = False  # RAVDESS calm -> neutral (the paper's 7 classes)
    common_only: bool = False  # keep only labels every corpus has
    sampling_rate: int | None = None  # decode/augment rate; None = the feature extractor's


@dataclass
class ProtocolSection:
    name: str = "holdout"  # holdout | speaker-kfold | loso | utterance | paper
    folds: int = 5
    test_size: float = 0.2
    val_size: float = 0.1  # fraction of (training) speakers held out for early stopping
    seed: int = 0


@dataclass
class TrainingSection:
    learning_rate: float = 1e-3
    epochs: int = 40
    batch_size: int = 32
    eval_batch_size: int = 64
    weight_decay: float = 1e-3
    warmup_ratio: float = 0.05
    lr_scheduler: str = "cosine"  # any transformers SchedulerType
    optimizer: str = "adamw_torch"  # any transformers OptimizerNames
    early_stopping_patience: int | None = 10  # epochs without validation-UAR gain; None = off
    class_weighted_loss: bool = False  # inverse-frequency class weights in the loss
    label_smoothing: float = 0.0
    max_train_frames: int | None = None  # random crop of training items (frames)
    seed: int = 0
    num_proc: int = 2  # processes for augmentation and feature extraction
    logging_steps: int = 20


@dataclass
class Experiment:
    data: DataSection = field(default_factory=DataSection)
    features: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    augmentation: dict = field(default_factory=lambda: {"copies": []})
    protocol: ProtocolSection = field(default_factory=ProtocolSection)
    training: TrainingSection = field(default_factory=TrainingSection)

    @property
    def corpora(self) -> list[str]:
        return [self.data.corpus] if isinstance(self.data.corpus, str) else list(self.data.corpus)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def feature_extractor(self) -> SERFeatureExtractor:
        return SERFeatureExtractor(**self.features)

    def model_config(self, labels: list[str], class_weights: list[float] | None = None) -> SERConfig:
        values = dict(self.model)
        preset = values.pop("preset", "default")
        extractor = self.feature_extractor()
        values.setdefault("num_mfcc", extractor.n_mfcc)
        values["id2label"] = dict(enumerate(labels))
        values["label2id"] = {name: i for i, name in enumerate(labels)}
        values["class_weights"] = class_weights
        values.setdefault("label_smoothing", self.training.label_smoothing)
        if preset == "paper":
            values.setdefault(
                "num_frames", extractor.num_frames(int(round(extractor.max_duration * extractor.sampling_rate)))
            )
            return SERConfig.paper_preset(**values)
        return SERConfig(**values)


# ------------------------------------------------------------------------------------------- validation
def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _matches(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(_matches(v, args[0]) for v in value) if args else True
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return isinstance(value, tp)


def _check_mapping(values, hints: dict, where: str) -> None:
    if not isinstance(values, dict):
        raise ExperimentConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    for key, value in list(values.items()):
        if isinstance(value, str) and not _matches(value, hints.get(key, str)):
            value = values[key] = _parse_scalar(value)  # "1e-3" in a YAML file is a string to YAML 1.1
        if key not in hints:
            raise ExperimentConfigError(f"unknown key '{where}.{key}'; expected one of: {', '.join(sorted(hints))}")
        if not _matches(value, hints[key]):
            raise ExperimentConfigError(
                f"'{where}.{key}': expected {_type_name(hints[key])}, got {type(value).__name__} {value!r}"
            )


def _section(cls, values, where: str):
    values = values or {}
    _check_mapping(values, typing.get_type_hints(cls), where)
    return cls(**values)


def _extractor_hints() -> dict:
    params = inspect.signature(SERFeatureExtractor.__init__).parameters
    hints = typing.get_type_hints(SERFeatureExtractor.__init__)
    return {name: hints.get(name, typing.Any) for name in params if name not in ("self", "kwargs")}


def _model_hints() -> dict:
    # Only SERConfig's own fields (PreTrainedConfig's annotations need torch in scope to evaluate).
    import sys

    namespace = vars(sys.modules[SERConfig.__module__])
    own = {
        name: eval(ann, namespace) if isinstance(ann, str) else ann for name, ann in SERConfig.__annotations__.items()
    }
    return {"preset": str, **{name: tp for name, tp in own.items() if name != "class_weights"}}


def experiment_from_dict(raw: dict) -> Experiment:
    """Build and validate an :class:`Experiment`; every problem names its key."""
    raw = copy.deepcopy(raw or {})
    _check_mapping(raw, {f.name: typing.Any for f in fields(Experiment)}, "experiment")
    exp = Experiment(
        data=_section(DataSection, raw.get("data"), "data"),
        protocol=_section(ProtocolSection, raw.get("protocol"), "protocol"),
        training=_section(TrainingSection, raw.get("training"), "training"),
        features=raw.get("features") or {},
        model=raw.get("model") or {},
        augmentation=raw.get("augmentation") or {"copies": []},
    )
    _check_mapping(exp.features, _extractor_hints(), "features")
    _check_mapping(exp.model, _model_hints(), "model")
    if exp.model.get("preset", "default") not in ("default", "paper"):
        raise ExperimentConfigError(f"'model.preset' must be 'default' or 'paper', got {exp.model['preset']!r}")
    if exp.protocol.name not in PROTOCOLS:
        raise ExperimentConfigError(f"'protocol.name' must be one of {PROTOCOLS}, got {exp.protocol.name!r}")
    from .corpora import CORPORA

    for corpus in exp.corpora:
        if corpus not in CORPORA:
            raise ExperimentConfigError(f"'data.corpus': unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    try:
        AugmentConfig.from_value(exp.augmentation)
        exp.feature_extractor()
        exp.model_config(["a", "b"])
    except ExperimentConfigError:
        raise
    except Exception as err:  # the constructors' own checks, re-raised with the section named
        raise ExperimentConfigError(f"invalid experiment: {err}") from err
    return exp


def apply_override(raw: dict, assignment: str) -> dict:
    """Apply ``section.key=value`` (value parsed as YAML) to a raw experiment dict, in place."""
    if "=" not in assignment:
        raise ExperimentConfigError(f"--set expects section.key=value, got {assignment!r}")
    path, text = assignment.split("=", 1)
    keys = path.strip().split(".")
    target = raw
    for key in keys[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            raise ExperimentConfigError(f"--set {path}: '{key}' is not a section")
    target[keys[-1]] = _parse_scalar(text)
    return raw


def _parse_scalar(text: str):
    """YAML value, with "1e-3"-style numbers (strings to YAML 1.1) read as numbers."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
    return value


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read a YAML experiment, apply ``--set`` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentConfigError(f"experiment file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ExperimentConfigError(f"{path}: not valid YAML ({err})") from err
    for assignment in overrides or []:
        apply_override(raw, assignment)
    try:
        return experiment_from_dict(raw)
    except ExperimentConfigError as err:
        raise ExperimentConfigError(f"{path}: {err}") from err
