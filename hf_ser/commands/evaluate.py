"""`hf-ser evaluate`: run an evaluation protocol."""

from __future__ import annotations

import argparse

from ._common import at_least, data_dirs, experiment, experiment_args, fold_indices, output_dir


def register(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="run an evaluation protocol and report mean ± std over folds")
    experiment_args(evaluate)
    evaluate.add_argument("--protocol", help="override the config's protocol (names: hf_ser.training.protocols)")
    evaluate.add_argument(
        "--folds", type=at_least(2), default=None, help="folds for speaker-kfold (default: config, 5)"
    )
    evaluate.add_argument(
        "--only-folds", type=fold_indices, default=None, help="comma-separated fold indices to run (screening)"
    )
    evaluate.add_argument(
        "--train-corpus",
        help="cross-corpus shorthand: train on these corpora (comma-separated; folders: --data-dir corpus=PATH)",
    )
    evaluate.add_argument(
        "--test-corpus", help="cross-corpus shorthand: test on all of this corpus, on the labels all corpora share"
    )
    evaluate.add_argument("--test-data-dir", help="cross-corpus shorthand: folder of the test corpus")
    evaluate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_experiment
    from ..training.protocols import cross_corpus_overrides
    from ..training.results import HEADLINE
    from ..training.run import train

    dirs = data_dirs(args.data_dir)
    if args.train_corpus or args.test_corpus or args.test_data_dir:  # --test-data-dir alone was ignored
        if not (args.train_corpus and args.test_corpus and args.test_data_dir):
            raise ValueError("cross-corpus needs --train-corpus, --test-corpus and --test-data-dir")
        if args.protocol:  # it was ignored: the shorthand runs protocol cross-corpus
            raise ValueError(f"--protocol {args.protocol}: the cross-corpus shorthand runs protocol 'cross-corpus'")
        sources = args.train_corpus.split(",")
        dirs = {**({c: dirs for c in sources} if isinstance(dirs, str) else dirs), args.test_corpus: args.test_data_dir}
        exp = load_experiment(args.config, [*args.set, *cross_corpus_overrides(sources, args.test_corpus)])
    else:
        exp = experiment(args)
    protocol = exp.protocol.name if args.train_corpus else args.protocol or exp.protocol.name
    output = output_dir(args, f"-{protocol}")
    summary = train(exp, dirs, output, protocol=protocol, folds=args.folds, only_folds=args.only_folds).summary
    print(f"{summary.protocol} ({len(summary.folds)} folds) -> {output}")
    for key in HEADLINE:
        print(f"  {key:<12} {summary.headline(key).percent()}")
    if summary.collapsed_speakers:
        print(f"  test speakers whose clips all got one label: {', '.join(summary.collapsed_speakers)}")
    return 0
