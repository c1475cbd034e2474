"""The ``audio-classification`` pipeline, made to work without torchaudio and ffmpeg (remote code).

transformers' pipeline decodes paths and bytes with the ``ffmpeg`` binary and resamples dicts
with torchaudio; neither exists on a CPU-only machine. This subclass decodes with soundfile and
resamples with soxr, then hands a numpy array at the extractor's rate to the stock code; without
soundfile or soxr installed it leaves the input to the stock code.

Every saved model folder carries this file and names it in ``config.custom_pipelines``, so
``pipeline(model=folder_or_repo, trust_remote_code=True)`` uses it where hf-ser is not installed.
With hf-ser, :func:`hf_ser.load_classifier` passes it as ``pipeline_class``; the task's stock class is
never replaced, so other models' pipelines are untouched.
"""

from __future__ import annotations

from transformers.pipelines.audio_classification import AudioClassificationPipeline
from transformers.pipelines.base import Pipeline

from .audio_ser import decode_input

SER_MODEL_TYPES = ("ser", "ser_whisper")  # the hf-ser families (hf_ser.models.families registers them)


def _decoders_available() -> bool:
    try:
        import soundfile  # noqa: F401
        import soxr  # noqa: F401
    except ImportError:
        return False
    return True


class _Outputs(dict):
    """Model outputs with attribute access (what the stock ``postprocess`` reads)."""

    __getattr__ = dict.__getitem__


class SERAudioClassificationPipeline(AudioClassificationPipeline):
    """Accepts a file path, raw file bytes, a numpy array at the extractor's rate, a dict
    ``{"array" | "raw": ..., "sampling_rate": int}`` at any rate, or a row of a datasets ``Audio(decode=False)``
    column (``{"bytes", "path"}``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("top_k", 5)
        Pipeline.__init__(self, *args, **kwargs)  # skips the stock check, which knows only built-in models
        if getattr(self.model.config, "model_type", None) not in SER_MODEL_TYPES:
            raise ValueError(
                f"SERAudioClassificationPipeline serves hf-ser models (model_type {SER_MODEL_TYPES}), got "
                f"{type(self.model).__name__}; use transformers' own audio-classification pipeline for it"
            )

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, **kwargs):
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
            raise ValueError(f"top_k must be a whole number >= 0, or None for every label; got {top_k!r}")
        return super()._sanitize_parameters(top_k=top_k, function_to_apply=function_to_apply, **kwargs)

    def __call__(self, inputs, **kwargs):
        if isinstance(inputs, list) and not inputs:  # transformers fails on it with an IndexError
            return []
        return super().__call__(inputs, **kwargs)

    def postprocess(self, model_outputs, top_k=5, function_to_apply=None):
        """Scores are ``softmax(logits / config.temperature)``: calibrated where training fitted a temperature."""
        temperature = float(getattr(self.model.config, "temperature", 1.0) or 1.0)
        if temperature != 1.0 and function_to_apply in (None, "softmax"):
            model_outputs = dict(model_outputs)
            model_outputs["logits"] = model_outputs["logits"] / temperature
            model_outputs = _Outputs(model_outputs)
        return super().postprocess(model_outputs, top_k=top_k, function_to_apply=function_to_apply)

    def preprocess(self, inputs):
        if not _decoders_available():  # the stock path (ffmpeg for files, torchaudio for other rates)
            return super().preprocess(inputs)
        return super().preprocess(decode_input(inputs, self.feature_extractor.sampling_rate))
