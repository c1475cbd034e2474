"""The ``hf-ser`` command line: train, evaluate, predict, example (and card, push, demo)."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path


def _backend(args: argparse.Namespace):
    """(classify(waves) -> scores per wave, sampling rate, the classifier) for --backend torch or onnx."""
    from .inference import announce, load_classifier

    clf = load_classifier(args.model, adapt_on=args.adapt_on, backend=args.backend, int8=args.int8)
    announce(args.model)
    return (lambda waves: clf(list(waves), top_k=None, batch_size=len(waves))), clf.sampling_rate, clf


def _cmd_predict(args: argparse.Namespace) -> int:
    from .batch import predict_files, write_predictions

    if args.segments:
        return _predict_segments(args)
    classify, rate, _ = _backend(args)
    progress = args.output is not None and sys.stderr.isatty()
    predictions = predict_files(args.files, classify, rate, args.workers, args.batch_size, progress)
    if args.json and args.output:
        raise ValueError("--json prints to stdout; with --output the format follows the file's suffix (.csv, .jsonl)")
    if args.json:
        rows = list(predictions)
        top = args.top_k or None
        print(json.dumps({p.path: ({"error": p.error} if p.error else _ranked(p, top)) for p in rows}, indent=2))
    else:
        rows = write_predictions(_top_k(predictions, args.top_k), args.output)
    failed = [p for p in rows if p.error]
    if failed:
        print(f"hf-ser predict: {len(failed)} of {len(rows)} files failed (see their error rows)", file=sys.stderr)
    return 1 if failed else 0


def _ranked(prediction, top: int | None) -> list[dict]:
    return [{"label": k, "score": v} for k, v in list(prediction.scores.items())[:top]] or [
        {"label": prediction.label, "score": None}
    ]


def _top_k(predictions, k: int | None):
    for p in predictions:
        if k:
            p.scores = dict(list(p.scores.items())[:k])
        yield p


def _predict_segments(args: argparse.Namespace) -> int:
    import csv

    from .timeline import segments

    _, _, clf = _backend(args)
    results, failed = {}, 0
    for path in args.files:
        try:
            results[path] = segments(path, clf, progress=sys.stderr.isatty()).to_dict()
        except ValueError as err:
            results[path] = {"error": str(err)}
            failed += 1
            print(f"hf-ser predict: {err}", file=sys.stderr)
    if args.format == "json":
        text = json.dumps(results, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["path", "start", "end", "label", "score"])
        for path, result in results.items():
            for seg in result.get("segments", []):
                score = seg["scores"].get(seg["label"], "") if seg["scores"] else ""
                writer.writerow([path, seg["start"], seg["end"], seg["label"], score])
        text = buffer.getvalue()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 1 if failed else 0


def _cmd_example(args: argparse.Namespace) -> int:
    from .example import run_example

    run_example(Path(args.output_dir))
    return 0


def _data_dirs(values: list[str]):
    """``--data-dir PATH`` or, for several corpora, ``--data-dir ravdess=PATH --data-dir emodb=PATH``."""
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    pairs = [v.split("=", 1) for v in values]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("with several --data-dir, each must be corpus=path")
    return dict(pairs)


def _experiment(args: argparse.Namespace):
    from .training.config import load_experiment

    return load_experiment(args.config, args.set)


def _output_dir(args: argparse.Namespace, suffix: str = "") -> Path:
    return Path(args.output_dir) if args.output_dir else Path("runs") / (Path(args.config).stem + suffix)


def _cmd_train(args: argparse.Namespace) -> int:
    from .training.run import load_experiment_data, protocol_folds, run_split

    exp = _experiment(args)
    protocol = args.protocol or exp.protocol.name
    dataset = load_experiment_data(exp, _data_dirs(args.data_dir))
    folds, spec = protocol_folds(exp, dataset, protocol)
    if len(folds) != 1:
        raise ValueError(
            f"protocol {protocol!r} has {len(folds)} folds and `hf-ser train` trains one model: run it with "
            f"`hf-ser evaluate`, or train one split with --protocol holdout (or utterance, paper)"
        )
    output = _output_dir(args)
    result = run_split(exp, folds[0][1], output, resume=args.resume, augmented=spec.augments_before_split)
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


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .training.results import HEADLINE
    from .training.run import run_cross_corpus, run_protocol

    exp = _experiment(args)
    if args.train_corpus or args.test_corpus:
        if not (args.train_corpus and args.test_corpus and args.test_data_dir):
            raise ValueError("cross-corpus needs --train-corpus, --test-corpus and --test-data-dir")
        output = _output_dir(args, f"-{args.train_corpus}-to-{args.test_corpus}")
        summary = run_cross_corpus(
            exp, args.train_corpus.split(","), _data_dirs(args.data_dir), args.test_corpus, args.test_data_dir, output
        )
    else:
        protocol = args.protocol or exp.protocol.name
        output = _output_dir(args, f"-{protocol}")
        only = [int(i) for i in args.only_folds.split(",")] if args.only_folds else None
        summary = run_protocol(
            exp, _data_dirs(args.data_dir), output, protocol=protocol, folds=args.folds, only_folds=only
        )
    print(f"{summary.protocol} ({len(summary.folds)} folds) -> {output}")
    for key in HEADLINE:
        print(f"  {key:<12} {summary.headline(key).percent()}")
    if summary.collapsed_speakers:
        print(f"  test speakers whose clips all got one label: {', '.join(summary.collapsed_speakers)}")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from .publish.cards import write_card

    path = write_card(args.run, repo_id=args.repo_id, model_name=args.name)
    print(f"wrote {path}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from .publish.hub import describe_push, push

    if args.dry_run:
        print(describe_push(args.run, args.repo_id, private=args.private))
        return 0
    print(push(args.run, args.repo_id, private=args.private))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import launch

    if args.model:
        os.environ["HF_SER_MODEL"] = args.model
    launch(host=args.host, port=args.port, share=False)
    return 0


def _cmd_results(args: argparse.Namespace) -> int:
    from .publish.release import ReleasePlan, collect_partial, run_experiment
    from .publish.results_page import update_readme, write_report

    plan = Path(args.experiments)
    if args.action == "collect":  # an interrupted run: summarise the folds it finished
        for name in args.only.split(","):
            record = collect_partial(plan, name, Path(args.out), Path(args.results))
            print(f"{name}: {len(record.only_folds)} folds collected, accuracy {record.metric('accuracy').percent()}")
    if args.action == "run":
        names = args.only.split(",") if args.only else list(ReleasePlan.load(plan).experiments)
        seeds = [int(s) for s in args.seeds.split(",")]
        folds = [int(i) for i in args.only_folds.split(",")] if args.only_folds else None
        for name in names:
            record = run_experiment(
                plan, name, Path(args.corpora_dir), Path(args.out), Path(args.results), seeds, folds
            )
            print(f"{name}: accuracy {record.metric('accuracy').percent()}, UAR {record.metric('uar').percent()}")
    print(f"wrote {write_report(plan, Path(args.results), Path(args.report))}")
    update_readme(Path(args.readme), plan, Path(args.results))
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from .inference import bundled_dir
    from .publish.release import build_checkpoints, refresh_cards

    names = args.only.split(",") if args.only else None
    if args.what == "cards":
        refresh_cards(Path(args.experiments), Path(args.results), bundled_dir(), names)
    else:
        build_checkpoints(Path(args.experiments), Path(args.corpora_dir), Path(args.results), bundled_dir(), names)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-ser", description="Speech emotion recognition for the HF ecosystem")
    sub = parser.add_subparsers(dest="command", required=True)

    def experiment_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", required=True, help="experiment YAML (see configs/)")
        p.add_argument("--data-dir", required=True, action="append", help="corpus folder (or corpus=folder, repeated)")
        p.add_argument("--output-dir", default=None, help="run folder (default: runs/<config name>)")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config value, e.g. training.learning_rate=1e-3 (repeatable)",
        )

    train = sub.add_parser("train", help="train one model on the config's (single-split) protocol; write a run folder")
    experiment_args(train)
    train.add_argument("--protocol", help="override the config's protocol: a one-split one (holdout, utterance, paper)")
    train.add_argument("--resume", action="store_true", help="resume from the run's last Trainer checkpoint")
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="run an evaluation protocol and report mean ± std over folds")
    experiment_args(evaluate)
    evaluate.add_argument("--protocol", help="override the config's protocol (names: hf_ser.training.protocols)")
    evaluate.add_argument("--folds", type=int, default=None, help="folds for speaker-kfold (default: config, 5)")
    evaluate.add_argument("--only-folds", default=None, help="comma-separated fold indices to run (screening)")
    evaluate.add_argument("--train-corpus", help="cross-corpus: train on this corpus (its folder: --data-dir)")
    evaluate.add_argument("--test-corpus", help="cross-corpus: test on this corpus, on the labels both share")
    evaluate.add_argument("--test-data-dir", help="cross-corpus: folder of the test corpus")
    evaluate.set_defaults(func=_cmd_evaluate)

    predict = sub.add_parser("predict", help="classify audio files and folders (or emotion over time)")
    predict.add_argument("files", nargs="+", help="audio files or folders (WAV, FLAC, OGG, …; any rate; stereo ok)")
    predict.add_argument(
        "--model",
        default=None,
        help="model folder, ONNX export, bundled name or Hub id, for either backend "
        "(default: the accurate model where hf-ser[whisper] is installed, else the tiny one)",
    )
    predict.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="onnx: no torch at all")
    predict.add_argument("--int8", action="store_true", help="with --backend onnx: the int8-quantised model")
    predict.add_argument("--top-k", type=int, default=None, help="how many labels to print (default: all)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.add_argument("--output", default=None, help="write rows to a .csv or .jsonl file")
    predict.add_argument("--workers", type=int, default=2, help="decoding processes")
    predict.add_argument("--batch-size", type=int, default=16)
    predict.add_argument(
        "--adapt-on",
        action="append",
        default=None,
        metavar="PATH",
        help="a speaker-adaptive model: one speaker's clips (folder or files; repeatable) to adapt to first",
    )
    predict.add_argument("--segments", action="store_true", help="emotion over time (speech regions, Silero VAD)")
    predict.add_argument("--format", choices=["json", "csv"], default="json", help="--segments output format")
    predict.set_defaults(func=_cmd_predict)

    card = sub.add_parser("card", help="write the model card (README.md) of a run or checkpoint folder")
    card.add_argument("--run", required=True, help="run folder written by `hf-ser train`")
    card.add_argument("--repo-id", default=None, help="Hub id used in the card's usage snippets")
    card.add_argument("--name", default=None, help="model name in the card")
    card.set_defaults(func=_cmd_card)

    push = sub.add_parser("push", help="upload a run or checkpoint folder to the Hugging Face Hub")
    push.add_argument("--run", required=True, help="folder with weights, config and README.md card")
    push.add_argument("--repo-id", required=True, help="user/name of the model repo")
    push.add_argument("--private", action="store_true")
    push.add_argument("--dry-run", action="store_true", help="print the files, sizes and card metadata only")
    push.set_defaults(func=_cmd_push)

    demo = sub.add_parser("demo", help="launch the Gradio Space locally on the bundled checkpoints")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=7860)
    demo.add_argument("--model", default=None, help="also offer this model folder or Hub id")
    demo.set_defaults(func=_cmd_demo)

    def release_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--experiments", default="configs/experiments.yaml", help="the registered experiments")
        p.add_argument("--corpora-dir", default="../shared/corpora", help="folder with one folder per corpus")
        p.add_argument("--results", default="docs/results", help="where result files are read and written")
        p.add_argument("--only", default=None, help="comma-separated names")

    results = sub.add_parser("results", help="run registered experiments and/or regenerate docs/RESULTS.md")
    results.add_argument("action", choices=["run", "collect", "report"])
    release_args(results)
    results.add_argument("--out", default="runs/results", help="run folders (models, per-fold reports)")
    results.add_argument("--report", default="docs/RESULTS.md")
    results.add_argument("--readme", default="README.md", help="its generated results block is updated too")
    results.add_argument("--seeds", default="0", help="comma-separated training seeds")
    results.add_argument("--only-folds", default=None, help="screen on these fold indices only")
    results.set_defaults(func=_cmd_results)

    release = sub.add_parser("release", help="train the bundled checkpoints and write their cards")
    release.add_argument("what", choices=["checkpoints", "cards"], help="cards: re-attach results, rewrite cards")
    release_args(release)
    release.set_defaults(func=_cmd_release)

    tune = sub.add_parser("finetune", help="fine-tune a model on your own labelled clips")
    tune.add_argument(
        "data", help="audiofolder (<label>/*.wav [+ metadata.csv]), .csv/.jsonl manifest, or saved dataset"
    )
    tune.add_argument("--output-dir", required=True)
    tune.add_argument("--init-from", default="default", help="default (the shipped model), a model folder, or scratch")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the recipe")
    tune.add_argument("--per-class", type=int, default=None, help="use at most N training clips per label")
    tune.add_argument("--seed", type=int, default=0)
    tune.set_defaults(func=_cmd_finetune)

    export = sub.add_parser("export", help="export a model to ONNX (waveform -> logits with a numpy MFCC)")
    export.add_argument("--onnx", required=True, metavar="DIR", help="output folder")
    export.add_argument("--model", default=None, help="model folder (default: the model shipped in the package)")
    export.add_argument("--quantize", choices=["int8"], default=None, help="also write an int8 model")
    export.set_defaults(func=_cmd_export)

    example = sub.add_parser("example", help="build a model, save it, classify a generated file end to end")
    example.add_argument("--output-dir", default="runs/example")
    example.set_defaults(func=_cmd_example)
    return parser


def _cmd_finetune(args: argparse.Namespace) -> int:
    import logging

    from .finetune import finetune

    logging.basicConfig(level=logging.WARNING, format="hf-ser finetune: %(message)s")
    result, data = finetune(args.data, args.output_dir, args.init_from, args.set, args.per_class, args.seed)
    for where, reason in data.bad_rows:
        print(f"left out {where}: {reason}", file=sys.stderr)
    test = result.test
    print(
        f"{args.output_dir}: {len(result.labels)} labels ({', '.join(result.labels)}), test accuracy "
        f"{100 * test.accuracy:.2f}, UAR {100 * test.uar:.2f} on {result.rows['test']} clips; "
        f"{len(data.bad_rows)} bad rows left out"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .inference import resolve_model
    from .onnx.export import export_onnx

    out = export_onnx(resolve_model(args.model), args.onnx, quantize=args.quantize)
    print(f"exported {resolve_model(args.model)} to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"hf-ser {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
