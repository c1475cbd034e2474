"""`hf-ser export`: export a model to ONNX."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    export = sub.add_parser(
        "export", help="export a model to ONNX (waveform -> logits, the features in numpy: no torch needed to run it)"
    )
    export.add_argument("--onnx", required=True, metavar="DIR", help="output folder")
    export.add_argument("--model", default=None, help="model folder (default: the model shipped in the package)")
    export.add_argument("--quantize", choices=["int8"], default=None, help="also write an int8 model")
    export.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import resolve_model
    from ..onnx.export import export_onnx

    out = export_onnx(resolve_model(args.model), args.onnx, quantize=args.quantize)
    print(f"exported {resolve_model(args.model)} to {out}")
    return 0
