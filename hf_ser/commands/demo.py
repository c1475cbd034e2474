"""`hf-ser demo`: the Gradio Space on localhost."""

from __future__ import annotations

import argparse
import os


def register(sub) -> None:
    demo = sub.add_parser("demo", help="launch the Gradio Space locally on the bundled checkpoints")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=7860)
    demo.add_argument("--model", default=None, help="also offer this model folder or Hub id")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import launch

    if args.model:
        os.environ["HF_SER_MODEL"] = args.model
    launch(host=args.host, port=args.port, share=False)
    return 0
