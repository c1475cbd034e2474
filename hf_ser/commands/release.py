"""`hf-ser release`: train the bundled checkpoints, write their cards."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import release_args


def register(sub) -> None:
    release = sub.add_parser("release", help="train the bundled checkpoints and write their cards")
    release.add_argument("what", choices=["checkpoints", "cards"], help="cards: re-attach results, rewrite cards")
    release_args(release)
    release.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import bundled_dir
    from ..publish.release import build_checkpoints, refresh_cards

    names = args.only.split(",") if args.only else None
    if args.what == "cards":
        refresh_cards(Path(args.experiments), Path(args.results), bundled_dir(), names)
    else:
        build_checkpoints(Path(args.experiments), Path(args.corpora_dir), Path(args.results), bundled_dir(), names)
    return 0
