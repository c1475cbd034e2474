"""The ``hf-ser`` command line: one module per command in :mod:`hf_ser.commands`; this file only assembles them."""

from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-ser", description="Speech emotion recognition for the HF ecosystem")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"hf_ser.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # OSError: the file system's own refusals (a file where a folder is
        # wanted, no permission, a full disk) name the path; they were tracebacks (hf-ser example --output-dir a.wav)
        print(f"hf-ser {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
