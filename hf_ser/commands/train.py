"""`hf-ser train`: train one model on the config's (single-split) protocol."""

from __future__ import annotations

import argparse
import os

from ._common import data_dirs, experiment, experiment_args, output_dir


def register(sub) -> None:
    train = sub.add_parser("train", help="train one model on the config's (single-split) protocol; write a run folder")
    experiment_args(train)
    train.add_argument(
        "--protocol", help="override the config's protocol: a one-split one (holdout, utterance, paper, cross-corpus)"
    )
    train.add_argument("--resume", action="store_true", help="resume from the run's last Trainer checkpoint")
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.protocols import PROTOCOLS, get_protocol
    from ..training.run import train

    exp = experiment(args)
    protocol = args.protocol or exp.protocol.name
    if not get_protocol(protocol).single_split:
        one = ", ".join(name for name, p in PROTOCOLS.items() if p.single_split)
        raise ValueError(
            f"protocol {protocol!r} has several folds and `hf-ser train` trains one model: run it with "
            f"`hf-ser evaluate`, or train one split with --protocol {one}"
        )
    output = output_dir(args)
    result = train(exp, data_dirs(args.data_dir), output, protocol, resume=args.resume).run
    rank = os.environ.get("RANK", "0")
    if os.environ.get("WORLD_SIZE", "1") != "1":
        print(f"[rank {rank}] training finished", flush=True)
    if rank != "0":
        return 0
    test = result.test
    print(
        f"{output}: test accuracy {100 * test.accuracy:.2f}, UAR {100 * test.uar:.2f}, "
        f"macro-F1 {100 * test.macro_f1:.2f} ({protocol}, {result.epochs_run:.0f} epochs)"
    )
    return 0
