"""`hf-ser score`: how well a trained model does on your own labelled clips (before any fine-tuning)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import at_least, check_model_args, loaded_classifier, model_args, score_threshold

if TYPE_CHECKING:
    from ..scoring import LabelledScores


def register(sub) -> None:
    score = sub.add_parser("score", help="score a trained model on your own labelled clips (accuracy, UAR, ECE)")
    score.add_argument(
        "data",
        help="audiofolder (<label>/*.wav [+ metadata.csv]), .csv/.jsonl manifest, or saved dataset "
        "(or one split of a saved DatasetDict)",
    )
    model_args(score)
    score.add_argument("--workers", type=at_least(1), default=2, help="decoding processes (1: in this process)")
    score.add_argument("--batch-size", type=at_least(1), default=16, help="clips per model call (default 16)")
    score.add_argument(
        "--uncertain-below",
        type=score_threshold,
        default=None,
        metavar="SCORE",
        help="the 'uncertain' threshold whose effect is reported (default: the model's, else 0.4)",
    )
    score.add_argument(
        "--map",
        action="append",
        default=[],
        type=label_pair,
        metavar="YOURS=MODELS",
        help="score your label as one of the model's (repeatable), e.g. calm=neutral: the bundled general models "
        "were trained with RAVDESS calm as neutral",
    )
    score.add_argument(
        "--adapt-per-speaker",
        action="store_true",
        help="a speaker-adaptive model: adapt it to each speaker's clips (the data's speaker column) before "
        "classifying them",
    )
    score.add_argument("--output", default=None, help="also write the whole report to this .json file")
    score.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    score.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..adaptation import adapt_classifier, is_speaker_adaptive
    from ..inference import classifier_labels, confidence_rule, longest_clip_seconds
    from ..scoring import score_labelled

    check_model_args(args)
    if args.output and Path(args.output).suffix.lower() != ".json":
        raise ValueError(f"--output {args.output}: the report is written as JSON; name a .json file")
    logging.basicConfig(level=logging.WARNING, format="hf-ser score: %(message)s")
    classify, rate, clf = loaded_classifier(args)
    adaptive = is_speaker_adaptive(clf)
    if adaptive and not args.adapt_per_speaker:
        raise ValueError(
            f"{args.model or 'the model'} is speaker-adaptive: it answers once adapted to a speaker; "
            "--adapt-per-speaker adapts it to each speaker's clips in the data (a 'speaker' column)"
        )
    if args.adapt_per_speaker and not adaptive:
        raise ValueError(
            f"--adapt-per-speaker: {args.model or 'the model'} is not speaker-adaptive, so there is nothing to adapt"
        )
    rule = confidence_rule(clf, args.uncertain_below)
    report = score_labelled(
        args.data,
        classify,
        rate,
        classifier_labels(clf),
        rule=rule,
        longest=longest_clip_seconds(clf),
        workers=args.workers,
        batch_size=args.batch_size,
        label_map=dict(args.map),
        adapt=(lambda files: adapt_classifier(clf, files)) if adaptive else None,
    )
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(summary(args.data, report, rule.threshold))
    return 0


def label_pair(text: str) -> tuple[str, str]:
    yours, sep, models = text.partition("=")
    if not sep or not yours.strip() or not models.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected YOURS=MODELS, e.g. calm=neutral")
    return yours.strip(), models.strip()


def summary(source: str, report: LabelledScores, threshold: float) -> str:
    """The report as text: headline figures, calibration, the "uncertain" rule, then a row per label."""
    answered = "none" if report.accuracy_answered is None else f"{100 * report.accuracy_answered:.1f} %"
    lines = [
        f"{source}: {report.clips} clips scored on {len(report.per_class)} of the model's {len(report.labels)} "
        f"labels; {len(report.left_out)} left out"
        + (" (each logged above, with the reason)" if report.left_out else "")
        + (f"; adapted to each of {report.adapted_speakers} speakers" if report.adapted_speakers else ""),
        f"  accuracy {100 * report.accuracy:.1f} %, UAR {100 * report.uar:.1f} %, "
        f"macro F1 {100 * report.macro_f1:.1f} %",
        f"  calibration: ECE {report.ece:.3f} (a perfectly calibrated model would show {report.ece_perfect_model:.3f} "
        "on as many clips)",
        f"  answered 'uncertain' (top score under {threshold:.2f}, or out-of-range input): "
        f"{100 * (1 - report.answered):.1f} % of clips; accuracy of the answered {answered}",
        "",
        "| label | clips | recall | precision | F1 |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {s.support} | {100 * s.recall:.1f} | {100 * s.precision:.1f} | {100 * s.f1:.1f} |"
        for name, s in report.per_class.items()
    ]
    return "\n".join(lines)
