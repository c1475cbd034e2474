"""`hf-ser finetune`: fine-tune on your own labelled clips."""

from __future__ import annotations

import argparse

from ._common import at_least, open_fraction


def register(sub) -> None:
    tune = sub.add_parser("finetune", help="fine-tune a model on your own labelled clips")
    tune.add_argument(
        "data",
        help="audiofolder (<label>/*.wav [+ metadata.csv]), .csv/.jsonl manifest, or saved dataset "
        "(or one split of a saved DatasetDict)",
    )
    tune.add_argument(
        "--output-dir", required=True, help="the folder the fine-tuned model (loadable, with its card) goes to"
    )
    tune.add_argument("--init-from", default="default", help="default (the shipped model), a model folder, or scratch")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the recipe")
    tune.add_argument("--per-class", type=at_least(1), default=None, help="use at most N training clips per label")
    tune.add_argument("--seed", type=int, default=0, help="the split's and the training's seed")
    tune.add_argument(
        "--test-size", type=open_fraction, default=0.2, help="share of speakers (else of each label's clips) to test on"
    )
    tune.add_argument(
        "--val-size",
        type=open_fraction,
        default=0.0,
        help="share of speakers held out to keep the best epoch and fit the temperature on (calibrated scores; "
        "needs a speaker column); default: none, scores uncalibrated",
    )
    tune.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..finetune import finetune

    logging.basicConfig(level=logging.WARNING, format="hf-ser finetune: %(message)s")
    result, data = finetune(
        args.data,
        args.output_dir,
        args.init_from,
        args.set,
        args.per_class,
        args.seed,
        test_size=args.test_size,
        val_size=args.val_size,
    )
    # each bad row was logged as it was left out (hf_ser.finetune.load_user_data): not printed twice
    test = result.test
    print(
        f"{args.output_dir}: {len(result.labels)} labels ({', '.join(result.labels)}), test accuracy "
        f"{100 * test.accuracy:.2f}, UAR {100 * test.uar:.2f} on {result.rows['test']} clips; "
        f"{len(data.bad_rows)} bad rows left out"
    )
    return 0
