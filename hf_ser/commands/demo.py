"""`hf-ser demo`: the Gradio Space on localhost."""

from __future__ import annotations

import argparse
import os

from ._common import at_least


def register(sub) -> None:
    demo = sub.add_parser("demo", help="launch the Gradio Space locally on the bundled checkpoints")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=at_least(1, 65535), default=7860)
    demo.add_argument("--model", default=None, help="also offer this model folder or Hub id")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import launch

    if args.model:
        os.environ["HF_SER_MODEL"] = args.model
    try:
        launch(host=args.host, port=args.port, share=False)
    except OSError as err:  # gradio's "Cannot find empty port", or a host it cannot bind: was a traceback
        raise ValueError(
            f"cannot serve on {args.host}:{args.port}: the port is in use or the address cannot be bound; "
            "choose another --port (or --host)"
        ) from err
    return 0
