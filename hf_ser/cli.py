"""The ``hf-ser`` command line: predict, example (later: train, evaluate, card, push, demo)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_predict(args: argparse.Namespace) -> int:
    from .inference import load_classifier

    classifier = load_classifier(args.model)
    results = {}
    for path in args.files:
        results[path] = classifier(path, top_k=args.top_k)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for path, scores in results.items():
            ranked = ", ".join(f"{s['label']} {s['score']:.3f}" for s in scores)
            print(f"{path}: {ranked}")
    return 0


def _cmd_example(args: argparse.Namespace) -> int:
    from .example import run_example

    run_example(Path(args.output_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-ser", description="Speech emotion recognition for the HF ecosystem")
    sub = parser.add_subparsers(dest="command", required=True)

    predict = sub.add_parser("predict", help="classify audio files")
    predict.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, …; any rate; stereo is down-mixed)")
    predict.add_argument("--model", default=None, help="model folder (default: the bundled checkpoint)")
    predict.add_argument("--top-k", type=int, default=None, help="how many labels to print (default: all)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.set_defaults(func=_cmd_predict)

    example = sub.add_parser("example", help="build a model, save it, classify a generated file end to end")
    example.add_argument("--output-dir", default="runs/example")
    example.set_defaults(func=_cmd_example)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"hf-ser {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
