"""The model-family seam: one registry, keyed by ``model_type``, that training, collation, fine-tuning, cards and
the pipeline read instead of special-casing a family.

A family says which config, feature extractor and model classes it uses, the name of the tensor the model
reads in training (``training_input``: the extractor's features, or cached encoder states), how to reach its
classification heads (fine-tuning re-heads through it), a sentence for model cards, and its presets. A model
type that hf-ser does not register (any transformers audio classifier, e.g. ``wav2vec2``) gets a generic family
built from transformers' own Auto mappings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import AutoConfig, AutoFeatureExtractor

from ..encoders.whisper import encoder_hub_id
from . import registry  # noqa: F401  (registers hf-ser's classes with the Auto* classes)
from .ser.configuration_ser import SERConfig
from .ser.configuration_ser_whisper import SERWhisperConfig
from .ser.feature_extraction_ser import SERFeatureExtractor
from .ser.feature_extraction_ser_whisper import SERWhisperFeatureExtractor
from .ser.modeling_ser import SERForAudioClassification
from .ser.modeling_ser_whisper import SERWhisperForAudioClassification


def _default_heads(model) -> list:
    return model.heads() if hasattr(model, "heads") else [model.classifier]


def _ser_head_text(config: dict) -> str:
    text = (
        f"{len(config['conv_channels'])} conv blocks {list(config['conv_channels'])} (kernels "
        f"{list(config['conv_kernel_sizes'])}), channel attention {'on' if config['use_channel_attention'] else 'off'},"
        f" spatial attention {'on' if config['use_spatial_attention'] else 'off'}, {config['pooling']} pooling, dense "
        f"{config['classifier_hidden_size']}"
    )
    if config.get("ensemble_size", 1) > 1:
        text += f"; an ensemble of {config['ensemble_size']} such networks (mean of their probabilities)"
    return text


def _trim_text(extractor: dict) -> str:
    """The card's words for the silence cut at a clip's ends (``trim_db``), both families' step; "" without it."""
    if extractor.get("trim_db") is None:
        return ""
    return (
        f", silence at each clip's ends cut (frames {extractor['trim_db']:g} dB under its loudest, "
        f"{extractor.get('trim_margin', 0.5):g} s kept)"
    )


def _ser_card_text(config: dict, extractor: dict) -> tuple[str, str]:
    """(architecture, features) sentences of a model card, from the saved config and preprocessor dicts."""
    kind = extractor.get("feature_type", "mfcc")
    coefficients = f"{extractor['n_mfcc']} MFCC" if kind == "mfcc" else f"{extractor['n_mels']} log-mel bands"
    deltas = {0: "", 1: " + deltas", 2: " + deltas and delta-deltas"}[extractor.get("deltas", 0)]
    features = (
        f"{coefficients}{deltas}, n_fft {extractor['n_fft']}, hop {extractor['hop_length']}, "
        f"{extractor['n_mels']} mels, top_db {extractor['top_db']}, per-utterance mean normalisation "
        f"{extractor.get('mean_normalization', 'none')} (level = gain-invariant), per-utterance variance "
        f"normalisation {'on' if extractor['do_normalize'] else 'off'}"
        + (f", {extractor['max_duration']} s from {extractor['offset']} s" if extractor.get("max_duration") else "")
        + (", each clip's DC offset removed" if extractor.get("remove_dc_offset", True) else "")
        + _trim_text(extractor)
        + (", YIN pitch and voicing channels" if extractor.get("prosody") else "")
        + (", standardised per speaker (speaker-adaptive)" if extractor.get("speaker_adaptive") else "")
    )
    return _ser_head_text(config), features


def _whisper_card_text(config: dict, extractor: dict) -> tuple[str, str]:
    whisper = config["whisper"]
    head = SERConfig(**{k: v for k, v in config["head"].items() if k != "num_mfcc"}).to_dict()
    trainable = config.get("trainable_encoder_layers", 0)
    architecture = (
        f"Whisper encoder ({whisper['encoder_layers']} layers, width {whisper['d_model']}; "
        + ("frozen" if not trainable else f"top {trainable} layers fine-tuned")
        + f"; weights: {config.get('encoder_provenance') or 'see config'}) → softmax-weighted sum of its "
        f"{whisper['encoder_layers'] + 1} hidden states"
        + (" (standardised per speaker or corpus: adaptive, adapt it first)" if config.get("adaptive_states") else "")
        + " → "
        + _ser_head_text(head)
    )
    features = (
        f"Whisper's log-mel ({extractor['feature_size']} bands, n_fft {extractor['n_fft']}, hop "
        f"{extractor['hop_length']}, 16 kHz), unpadded (no 30 s padding), clips up to {extractor['max_duration']} s"
        + (
            f", each clip first scaled to {extractor['level_dbfs']:g} dBFS"
            if extractor.get("level_dbfs") is not None
            else ""
        )
        + _trim_text(extractor)
    )
    return architecture, features


def _generic_card_text(config: dict, extractor: dict) -> tuple[str, str]:
    return f"transformers' {config['model_type']} audio classifier", f"its {extractor.get('feature_extractor_type')}"


@dataclass(frozen=True)
class ModelFamily:
    """What the rest of hf-ser needs to know about one kind of audio classifier."""

    model_type: str
    config_class: type
    feature_extractor_class: type
    model_class: type | None
    description: str
    training_input: str = "input_features"  # the model's input that training batches carry
    encoder_cache: bool = False  # train from cached frozen-encoder states (see hf_ser.data.encoder_cache)
    presets: tuple[str, ...] = ("default",)
    heads: Callable = field(default=_default_heads)  # model -> its classification head modules
    encoders: Callable = field(default=lambda model: [])  # model -> its pretrained encoder modules (none: [])
    card_text: Callable = field(
        default=_generic_card_text
    )  # (config dict, preprocessor dict) -> (architecture, features)
    base_model: Callable = field(default=lambda config: None)  # config dict -> the Hub id of its pretrained weights

    def input_name(self, feature_extractor) -> str:
        return self.training_input or feature_extractor.model_input_names[0]


FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    FAMILIES[family.model_type] = family
    return family


register_family(
    ModelFamily(
        model_type=SERConfig.model_type,
        config_class=SERConfig,
        feature_extractor_class=SERFeatureExtractor,
        model_class=SERForAudioClassification,
        description=(
            "a small attention 1D-CNN (conv blocks, CBAM channel and spatial attention) over MFCC or log-mel frames"
        ),
        presets=("default", "paper"),
        card_text=_ser_card_text,
    )
)
register_family(
    ModelFamily(
        model_type=SERWhisperConfig.model_type,
        config_class=SERWhisperConfig,
        feature_extractor_class=SERWhisperFeatureExtractor,
        model_class=SERWhisperForAudioClassification,
        description=(
            "OpenAI's Whisper-base encoder (frozen, unpadded) under the attention-CNN head: a learned softmax "
            "weighting of the encoder's 7 hidden states, conv blocks, CBAM attention"
        ),
        training_input="encoder_states",
        encoder_cache=True,
        encoders=lambda model: [model.encoder],
        card_text=_whisper_card_text,
        base_model=lambda config: encoder_hub_id(config.get("encoder_provenance")),
    )
)


def family_of(model_type: str) -> ModelFamily:
    """The registered family, or a generic one for any other model type transformers knows."""
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    try:
        config_class = type(AutoConfig.for_model(model_type))
    except ValueError as err:
        raise ValueError(
            f"unknown model_type {model_type!r}: neither an hf-ser family nor a transformers model"
        ) from err
    from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING

    if config_class not in FEATURE_EXTRACTOR_MAPPING:
        raise ValueError(f"model_type {model_type!r} has no feature extractor registered with AutoFeatureExtractor")
    return ModelFamily(
        model_type=model_type,
        config_class=config_class,
        feature_extractor_class=FEATURE_EXTRACTOR_MAPPING[config_class],
        model_class=MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING.get(config_class, None),
        description=f"transformers' {model_type} audio classifier",
        training_input="",
    )


def family_of_model(model) -> ModelFamily:
    return family_of(model.config.model_type)


__all__ = ["FAMILIES", "ModelFamily", "family_of", "family_of_model", "register_family", "AutoFeatureExtractor"]
