"""`hf-ser card`: write a model card."""

from __future__ import annotations

import argparse

from ._common import repo_id


def register(sub) -> None:
    card = sub.add_parser("card", help="write the model card (README.md) of a run or checkpoint folder")
    card.add_argument("--run", required=True, help="run folder written by `hf-ser train`")
    card.add_argument("--repo-id", type=repo_id, default=None, help="Hub id used in the card's usage snippets")
    card.add_argument("--name", default=None, help="model name in the card")
    card.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..publish.cards import write_card

    path = write_card(args.run, repo_id=args.repo_id, model_name=args.name)
    print(f"wrote {path}")
    return 0
