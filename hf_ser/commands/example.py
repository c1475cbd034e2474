"""`hf-ser example`: a self-contained end-to-end run."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    example = sub.add_parser("example", help="build a model, save it, classify a generated file end to end")
    example.add_argument("--output-dir", default="runs/example")
    example.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..example import run_example

    run_example(Path(args.output_dir))
    return 0
