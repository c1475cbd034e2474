"""`hf-ser evaluate`: run an evaluation protocol."""

from __future__ import annotations

import argparse

from ._common import data_dirs, experiment, experiment_args, output_dir


def register(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="run an evaluation protocol and report mean ± std over folds")
    experiment_args(evaluate)
    evaluate.add_argument("--protocol", help="override the config's protocol (names: hf_ser.training.protocols)")
    evaluate.add_argument("--folds", type=int, default=None, help="folds for speaker-kfold (default: config, 5)")
    evaluate.add_argument("--only-folds", default=None, help="comma-separated fold indices to run (screening)")
    evaluate.add_argument("--train-corpus", help="cross-corpus: train on this corpus (its folder: --data-dir)")
    evaluate.add_argument("--test-corpus", help="cross-corpus: test on this corpus, on the labels both share")
    evaluate.add_argument("--test-data-dir", help="cross-corpus: folder of the test corpus")
    evaluate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.results import HEADLINE
    from ..training.run import run_cross_corpus, run_protocol

    exp = experiment(args)
    if args.train_corpus or args.test_corpus:
        if not (args.train_corpus and args.test_corpus and args.test_data_dir):
            raise ValueError("cross-corpus needs --train-corpus, --test-corpus and --test-data-dir")
        output = output_dir(args, f"-{args.train_corpus}-to-{args.test_corpus}")
        summary = run_cross_corpus(
            exp, args.train_corpus.split(","), data_dirs(args.data_dir), args.test_corpus, args.test_data_dir, output
        )
    else:
        protocol = args.protocol or exp.protocol.name
        output = output_dir(args, f"-{protocol}")
        only = [int(i) for i in args.only_folds.split(",")] if args.only_folds else None
        summary = run_protocol(
            exp, data_dirs(args.data_dir), output, protocol=protocol, folds=args.folds, only_folds=only
        )
    print(f"{summary.protocol} ({len(summary.folds)} folds) -> {output}")
    for key in HEADLINE:
        print(f"  {key:<12} {summary.headline(key).percent()}")
    if summary.collapsed_speakers:
        print(f"  test speakers whose clips all got one label: {', '.join(summary.collapsed_speakers)}")
    return 0
