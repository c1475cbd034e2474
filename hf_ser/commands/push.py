"""`hf-ser push`: upload a folder to the Hub."""

from __future__ import annotations

import argparse

from ._common import repo_id


def register(sub) -> None:
    push = sub.add_parser("push", help="upload a run or checkpoint folder to the Hugging Face Hub")
    push.add_argument("--run", required=True, help="folder with weights, config and README.md card")
    push.add_argument("--repo-id", type=repo_id, required=True, help="user/name of the model repo")
    push.add_argument("--private", action="store_true")
    push.add_argument("--dry-run", action="store_true", help="print the files, sizes and card metadata only")
    push.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..publish.hub import describe_push, push

    if args.dry_run:
        print(describe_push(args.run, args.repo_id, private=args.private))
        return 0
    print(push(args.run, args.repo_id, private=args.private))
    return 0
