"""`hf-ser predict`: classify files and folders, or emotion over time."""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ._common import at_least, check_model_args, loaded_classifier, model_args, non_negative, score_threshold

TIMELINE_SUFFIXES = {"json": ".json", "csv": ".csv", "jsonl": ".jsonl"}  # --segments formats and their suffixes
STDIN = "-"


@contextmanager
def stdin_as_file(files: list[str]) -> Iterator[tuple[list[str], Callable[[str | None], str | None]]]:
    """``-`` among the inputs: standard input's bytes (a pipe from ffmpeg or sox: what libsndfile cannot read,
    M4A/AAC, arrives as WAV) in a temporary file, and a function that shows its path as ``-`` again in rows and
    errors. Decoding, batching and the "uncertain" rule then treat it as any file."""
    if STDIN not in files:
        yield files, lambda text: text
        return
    if files.count(STDIN) > 1:
        raise ValueError("- (standard input) given more than once")
    if sys.stdin.isatty():
        raise ValueError("-: standard input is a terminal, not audio: pipe a file in (ffmpeg -i in.m4a -f wav - | ...)")
    data = sys.stdin.buffer.read()
    if not data:
        raise ValueError("-: standard input was empty (expected the bytes of an audio file)")
    with tempfile.TemporaryDirectory(prefix="hf-ser-stdin-") as folder:
        path = Path(folder) / "stdin.wav"  # the suffix admits it as audio; libsndfile reads the format from the bytes
        path.write_bytes(data)
        yield [str(path) if f == STDIN else f for f in files], lambda text: text and text.replace(str(path), STDIN)


def timeline_format(args: argparse.Namespace) -> str:
    """--format, or the one --output's suffix names (json otherwise); a format the suffix contradicts is refused
    (`--format csv --output t.json` wrote CSV into t.json, and `--output t.jsonl` one JSON document)."""
    suffix = Path(args.output).suffix.lower() if args.output else ""
    named = next((form for form, known in TIMELINE_SUFFIXES.items() if known == suffix), None)
    if args.format and named and args.format != named:
        raise ValueError(f"--format {args.format} but --output {args.output} names {named}; use one of them")
    return args.format or named or "json"


def register(sub) -> None:
    predict = sub.add_parser("predict", help="classify audio files and folders (or emotion over time)")
    predict.add_argument(
        "files",
        nargs="+",
        help="audio files or folders (WAV, FLAC, OGG, …; any rate; stereo ok); - reads one file from standard input",
    )
    model_args(predict)
    predict.add_argument("--top-k", type=at_least(1), default=None, help="how many labels to print (default: all)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.add_argument(
        "--output",
        default=None,
        help="write rows to a .csv or .jsonl file (--engine ray: a .jsonl file or a folder of Parquet shards)",
    )
    predict.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: Ray Data actors on a local instance or a cluster (needs hf-ser[ray]); reruns resume",
    )
    predict.add_argument("--address", default=None, help="--engine ray: 'auto' (run on a cluster node; default: local)")
    predict.add_argument("--actors", type=at_least(1), default=None, help="--engine ray: actors (default: one per CPU)")
    predict.add_argument(
        "--gpus-per-actor", type=non_negative, default=0, help="--engine ray: GPUs per actor (e.g. 1 or 0.5)"
    )
    predict.add_argument("--workers", type=at_least(1), default=2, help="decoding processes (1: in this process)")
    predict.add_argument(
        "--batch-size",
        type=at_least(1),
        default=16,
        help="clips per model call (default 16; --engine ray: files per actor batch)",
    )
    predict.add_argument(
        "--adapt-on",
        action="append",
        default=None,
        metavar="PATH",
        help="a speaker-adaptive model: one speaker's clips (folder or files; repeatable) to adapt to first",
    )
    predict.add_argument(
        "--uncertain-below",
        type=score_threshold,
        default=None,
        metavar="SCORE",
        help="answer 'uncertain' below this calibrated top score (default: the model's, else 0.4; 0: never for "
        "the score, clipped or band-limited input still is)",
    )
    predict.add_argument("--segments", action="store_true", help="emotion over time (speech regions, Silero VAD)")
    predict.add_argument(
        "--format",
        choices=list(TIMELINE_SUFFIXES),
        default=None,
        help="--segments output format (default: by --output's suffix, .csv, .jsonl (a line per file) or .json)",
    )
    predict.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if STDIN in args.files and args.engine == "ray":
        raise ValueError("- (standard input) is for local runs; Ray actors read files every node can reach")
    with stdin_as_file(args.files) as (files, shown):
        return _run(argparse.Namespace(**{**vars(args), "files": files}), shown)


def _run(args: argparse.Namespace, shown: Callable[[str | None], str | None]) -> int:
    from ..batch import WorkerDied, check_output_file, check_rows_output, predict_files, write_predictions

    if args.json and args.output:
        raise ValueError("--json prints to stdout; with --output the format follows the file's suffix (.csv, .jsonl)")
    if args.format is not None and not args.segments:
        raise ValueError("--format is the --segments output format; rows' format follows --output's suffix")
    if args.format is not None and args.engine == "ray":  # it was ignored
        raise ValueError(
            "--format is for local timelines; a Ray run writes a .jsonl file or a folder of Parquet shards"
        )
    if args.top_k is not None and (args.segments or args.engine == "ray"):
        raise ValueError("--top-k trims printed rows; --segments and --engine ray keep every label's score")
    _check_engine_options(args)
    if args.output and args.engine == "local" and not args.segments:
        check_rows_output(args.output)  # before the model loads, not after
    if args.output and args.segments and args.engine == "local":
        check_output_file(args.output, "timelines")
        timeline_format(args)
    if args.output:  # made before the run, not found missing after it
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    if args.engine == "ray":
        return _predict_ray(args)
    if args.segments:
        return _predict_segments(args, shown)
    from ..inference import confidence_rule, longest_clip_seconds

    classify, rate, clf = loaded_classifier(args)
    progress = args.output is not None and sys.stderr.isatty()
    rule = confidence_rule(clf, args.uncertain_below)
    longest = longest_clip_seconds(clf)
    predictions = (
        replace(p, path=shown(p.path), error=shown(p.error))
        for p in predict_files(
            args.files, classify, rate, args.workers, args.batch_size, progress, rule=rule, longest=longest
        )
    )
    rows = []
    try:
        if args.json:
            for prediction in predictions:  # one at a time: the rows before a WorkerDied are still printed
                rows.append(prediction)
        else:
            rows = write_predictions(_top_k(predictions, args.top_k), args.output)
    except WorkerDied as err:
        died = err
    else:
        died = None
    if args.json:
        print(json.dumps({p.path: _json_row(p, args.top_k or None) for p in rows}, indent=2))
    if died:
        print(f"hf-ser predict: error: {died}", file=sys.stderr)
        return 1
    _note_long_recordings(rows)
    failed = [p for p in rows if p.error]
    if failed:
        print(f"hf-ser predict: {len(failed)} of {len(rows)} files failed (see their error rows)", file=sys.stderr)
    return 1 if failed else 0


def _note_long_recordings(rows: list) -> None:
    """Say when long files got one label for all of it: a recording of several emotions is answered as one, often
    with a label, not "uncertain" (``InputPolicy.long_recording_seconds``); ``--segments`` shows the changes."""
    from ..input_policy import DEFAULT_POLICY

    limit = DEFAULT_POLICY.long_recording_seconds
    long = [p for p in rows if not p.error and p.score is not None and (p.seconds or 0) > limit]
    if long:
        which = long[0].path if len(long) == 1 else f"{len(long)} files (first: {long[0].path})"
        print(
            f"hf-ser predict: note: {which} {'is' if len(long) == 1 else 'are'} longer than {limit:g} s and got one "
            "label for the whole recording; where the emotion changes, --segments gives emotion over time",
            file=sys.stderr,
        )


def _check_engine_options(args: argparse.Namespace) -> None:
    """Options of one engine or backend given to another were ignored (--int8 answered with the float model,
    --gpus-per-actor ran locally on the CPU): they are refused before the model loads."""
    check_model_args(args)
    if args.engine == "ray":
        if args.device is not None:
            raise ValueError("--device is for local runs; Ray actors get a GPU with --gpus-per-actor")
        return
    given = [name for name, value in (("--address", args.address), ("--actors", args.actors)) if value is not None]
    given += ["--gpus-per-actor"] if args.gpus_per_actor else []
    if given:
        raise ValueError(f"{', '.join(given)}: for --engine ray (this run is local; on a GPU use --device cuda)")


def _predict_ray(args: argparse.Namespace) -> int:
    if not args.output or args.json:
        raise ValueError("--engine ray writes to --output (a .jsonl file or a folder for Parquet shards)")
    from ..inference import announce, resolve_model
    from ..ray_batch import predict_with_ray

    folder = resolve_model(args.model, args.backend)
    announce(args.model, folder)
    summary = predict_with_ray(
        args.files,
        args.output,
        model=folder,
        backend=args.backend,
        int8=args.int8,
        segments=args.segments,
        address=args.address,
        actors=args.actors,
        gpus_per_actor=args.gpus_per_actor,
        batch_size=args.batch_size,
        adapt_on=args.adapt_on,
        uncertain_below=args.uncertain_below,
    )
    total = summary.written + summary.resumed
    print(
        f"hf-ser predict: {summary.written} rows written to {summary.output}"
        + (f" ({summary.resumed} from earlier runs kept)" if summary.resumed else ""),
        file=sys.stderr,
    )
    if summary.failed:
        print(f"hf-ser predict: {summary.failed} of {total} files failed (see their error rows)", file=sys.stderr)
    return 0 if summary.ok else 1


def _json_row(prediction, top: int | None) -> dict:
    """``{"error"}``, or ``{"label", "score", "reason", "scores": [{label, score}, ...]}`` (label: an emotion,
    "uncertain" with its reason, or "no speech")."""
    if prediction.error:
        return {"error": prediction.error}
    return {
        "label": prediction.label,
        "score": prediction.score,
        "reason": prediction.reason,
        "scores": _ranked(prediction, top),
    }


def _ranked(prediction, top: int | None) -> list[dict]:
    """The scores, best first; none for a clip without speech (it was given a made-up {"no speech", null} score)."""
    return [{"label": k, "score": v} for k, v in list(prediction.scores.items())[:top]]


def _top_k(predictions, k: int | None):
    for p in predictions:
        if k:
            p.scores = dict(list(p.scores.items())[:k])
        yield p


def _predict_segments(args: argparse.Namespace, shown: Callable[[str | None], str | None]) -> int:
    import csv

    from ..batch import audio_files
    from ..inference import confidence_rule
    from ..timeline import segments

    _, _, clf = loaded_classifier(args)
    rule = confidence_rule(clf, args.uncertain_below)
    files, missing = audio_files(args.files)  # folders walked as batch runs walk them
    results, failed = {p.path: {"error": p.error} for p in missing}, len(missing)
    for p in missing:
        print(f"hf-ser predict: {p.path}: {p.error}", file=sys.stderr)
    for path in files:
        try:
            results[shown(path)] = segments(path, clf, progress=sys.stderr.isatty(), rule=rule).to_dict()
        except ValueError as err:
            results[shown(path)] = {"error": shown(str(err))}
            failed += 1
            print(f"hf-ser predict: {shown(str(err))}", file=sys.stderr)
    form = timeline_format(args)
    if form == "json":
        text = json.dumps(results, indent=2) + "\n"
    elif form == "jsonl":
        text = "".join(json.dumps({"path": path, **result}) + "\n" for path, result in results.items())
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["path", "start", "end", "label", "score", "emotion", "reason", "error"])
        for path, result in results.items():
            if "error" in result:  # a row of its own, as batch rows have (it had none: only stderr said so)
                writer.writerow([path, "", "", "", "", "", "", result["error"]])
            for seg in result.get("segments", []):
                # the top emotion and its score also for "uncertain" (whose reason is kept): both were left empty
                emotion = max(seg["scores"], key=seg["scores"].get) if seg["scores"] else ""
                score = seg["scores"][emotion] if emotion else ""
                writer.writerow([path, seg["start"], seg["end"], seg["label"], score, emotion, seg["reason"] or "", ""])
        text = buffer.getvalue()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 1 if failed else 0
