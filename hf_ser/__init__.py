"""hf-ser: speech emotion recognition for the Hugging Face ecosystem: a tiny MFCC / log-mel attention 1D-CNN and an
accurate Whisper-base-encoder family under the same head.

``import hf_ser`` is cheap (no torch, no transformers): public names load on first use, so the
ONNX command-line path starts in a fraction of a second. Importing the model classes
(``from hf_ser import SERConfig``, ``load_classifier``, … or ``hf_ser.models.registry``) registers them with
the Auto* classes. Other models' pipelines are left untouched: the soundfile/soxr
``audio-classification`` pipeline is :class:`SERAudioClassificationPipeline`, which
:func:`load_classifier` uses (saved folders also name it in ``config.custom_pipelines``).

    from hf_ser import load_classifier
    classifier = load_classifier()            # the default model shipped in the package
    classifier("clip.wav")
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_LAZY = {
    "SERConfig": "hf_ser.models.registry",
    "SERFeatureExtractor": "hf_ser.models.registry",
    "SERModel": "hf_ser.models.registry",
    "SERForAudioClassification": "hf_ser.models.registry",
    "SERPreTrainedModel": "hf_ser.models.registry",
    "SERAudioClassificationPipeline": "hf_ser.models.registry",
    "SERWhisperConfig": "hf_ser.models.registry",
    "SERWhisperFeatureExtractor": "hf_ser.models.registry",
    "SERWhisperForAudioClassification": "hf_ser.models.registry",
    "load_whisper_encoder": "hf_ser.encoders.whisper",
    "load_classifier": "hf_ser.inference",
    "default_model_path": "hf_ser.inference",
    "segments": "hf_ser.timeline",
    "confidence_rule": "hf_ser.inference",
    "ConfidenceRule": "hf_ser.confidence",
    "predict_with_ray": "hf_ser.ray_batch",
    "load_audio_dataset": "hf_ser.finetune",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'hf_ser' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


__all__ = ["__version__", *_LAZY]
