"""Batch runs that lose nothing: walk files and folders, decode in worker processes, classify in batches,
one row per file; every file that cannot be read is recorded with the reason, and the rest finish.

The input policy (:mod:`hf_ser.input_policy`) decides: clips shorter than its minimum get an error row, clips in
which Silero VAD finds no speech (a level-independent decision) get the label ``"no speech"`` instead of an
emotion. This module imports neither torch nor transformers: the backend (torch pipeline or ONNX) is passed in.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .audio import AudioDecodeError, header_seconds, load_audio, url_refusal
from .confidence import DEFAULT_RULE, UNCERTAIN, ConfidenceRule
from .files import folder_entries
from .input_policy import DEFAULT_POLICY, NO_SPEECH, InputPolicy

logger = logging.getLogger("hf_ser.batch")


class WorkerDied(RuntimeError):
    """Decoding worker processes die even on one file at a time (typically a script without a main guard, whose
    spawned workers re-run it); the rows yielded before it stand."""


class DecodedClip(NamedTuple):
    """A file as a worker decoded it: the waveform at the model's rate (None when the file failed or holds no
    speech), its length, the error ("" for no speech, None when fine) and the seconds of speech the VAD found in it
    (the "uncertain" rule holds it to its minimum of speech)."""

    path: str
    wave: np.ndarray | None
    seconds: float | None
    error: str | None
    speech_seconds: float | None = None


@dataclass
class Prediction:
    path: str
    label: str | None = None
    score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None
    reason: str | None = None  # why the label is "uncertain" (scores kept; the top emotion is their first key)


DATASET_DICT_FILE = "dataset_dict.json"  # save_to_disk of a DatasetDict: its splits, each a saved Dataset's folder
SAVED_DATASET_FILES = ("dataset_info.json", DATASET_DICT_FILE)  # what datasets' save_to_disk writes
SAVED_DATASET_HINT = (
    ": a dataset saved with save_to_disk, which hf-ser score and finetune read; to classify its audio column, "
    "run the pipeline over it (README: KeyDataset)"
)


def audio_files(
    inputs: Iterable[str | Path] | str | Path, policy: InputPolicy = DEFAULT_POLICY
) -> tuple[list[str], list[Prediction]]:
    """Files given directly, plus every audio file under given folders (sorted); missing paths are errors.

    A folder walk takes files by their suffix (:attr:`InputPolicy.audio_suffixes`): the files it leaves are logged,
    counted by suffix, and a folder with no audio file at all is an error row, so that a folder of, say, phone
    recordings in .m4a (which libsndfile cannot read) is never an empty run that succeeds."""
    if isinstance(inputs, (str, os.PathLike)):  # one path: a str was walked letter by letter ("r", "i", "n")
        inputs = [inputs]
    files, errors = [], []
    for item in inputs:
        path = Path(item)
        if isinstance(item, str) and (refused := url_refusal(item)):  # Path("s3://b/x") is "s3:/b/x"
            errors.append(Prediction(item, error=refused))
        elif path.is_dir():
            suffixes = policy.audio_suffixes
            found, unreadable = folder_entries(path)
            errors += [Prediction(str(p), error=UNREADABLE_ENTRY) for p in unreadable if p.suffix.lower() in suffixes]
            found += [p for p in unreadable if p.suffix.lower() not in suffixes]  # only to be counted as left out
            audio = [str(p) for p in found if p.suffix.lower() in suffixes]
            left_out = [p for p in found if p.suffix.lower() not in suffixes and p.name not in policy.companion_files]
            others = Counter(p.suffix.lower() or "no suffix" for p in left_out)
            left = ", ".join(f"{suffix} x{count}" for suffix, count in sorted(others.items()))
            if others:
                logger.warning("%s: %d files left out, not audio by their suffix (%s)", path, len(left_out), left)
            if not audio:
                looked = f"no audio files in this folder (looked for {' '.join(sorted(suffixes))})"
                convert = (
                    ": libsndfile does not read those; convert them first (ffmpeg -i in.m4a out.wav)"
                    if set(others) & UNREAD_CONTAINERS
                    else SAVED_DATASET_HINT
                    if any((path / name).is_file() for name in SAVED_DATASET_FILES)
                    else ""
                )
                errors.append(
                    Prediction(
                        str(path), error=f"{looked}; it holds {left}{convert}" if left else f"{looked}; it is empty"
                    )
                )
            files += audio
        elif path.is_file():
            files.append(str(path))
        else:
            errors.append(Prediction(str(path), error="no such file or folder"))
    return _once_each(files), errors


# audio that phones, browsers and video apps record in containers libsndfile does not read (AAC, WMA, AMR, video)
UNREAD_CONTAINERS = {".m4a", ".aac", ".mp4", ".wma", ".amr", ".3gp", ".webm", ".mov", ".mkv"}

UNREADABLE_ENTRY = "not a readable file (a link to a file that does not exist, or not a regular file)"


def _once_each(files: list[str]) -> list[str]:
    """Each file once (the first spelling kept), so that a file given both alone and inside a given folder, or twice,
    gets one row, in every output format alike (``--json``, keyed by path, had kept one where CSV kept two)."""
    seen: set[str] = set()
    unique = []
    for f in files:
        if (key := os.path.realpath(f)) not in seen:
            seen.add(key)
            unique.append(f)
    if len(unique) < len(files):
        logger.warning("%d files were given more than once; each is classified once", len(files) - len(unique))
    return unique


def unclassified_row(clip: DecodedClip) -> Prediction | None:
    """The row of a clip that is not classified (its error, or "no speech"), or None for one that is."""
    if clip.error:
        return Prediction(clip.path, seconds=clip.seconds, error=clip.error)
    if clip.wave is None:
        return Prediction(clip.path, NO_SPEECH, None, {}, clip.seconds)
    return None


def decode_clip(
    path: str, rate: int, policy: InputPolicy = DEFAULT_POLICY, longest: float | None = None
) -> DecodedClip:
    """The file decoded at ``rate``; the waveform is None and the error empty when the clip holds no speech.
    ``longest``: the most seconds the model takes in one piece (None: any length). Runs in worker processes (the
    VAD included)."""
    declared = header_seconds(path) if longest is not None else None
    if declared is not None and (error := policy.too_long(declared, longest)):  # refused before it is decoded
        return DecodedClip(path, None, declared, f"{path}: {error}")
    try:
        wave, _ = load_audio(path, rate)
    except (AudioDecodeError, ValueError) as err:
        return DecodedClip(path, None, None, str(err))
    seconds = len(wave) / rate
    if error := policy.too_short(seconds) or policy.too_long(seconds, longest):
        return DecodedClip(path, None, seconds, f"{path}: {error}")
    found = policy.speech(wave, rate)
    if not policy.has_speech(found):
        return DecodedClip(path, None, seconds, "", found.seconds)
    return DecodedClip(path, wave, seconds, None, found.seconds)


def predicted(
    path: str,
    scores: list[dict],
    wave: np.ndarray,
    rate: int,
    seconds: float,
    rule: ConfidenceRule = DEFAULT_RULE,
    speech_seconds: float | None = None,
) -> Prediction:
    """The row of one classified clip: its emotion, or "uncertain" with the reason (scores kept, ranked)."""
    ranked = dict(sorted(((d["label"], float(d["score"])) for d in scores), key=lambda kv: -kv[1]))
    verdict = rule.decide(ranked, wave, rate, speech_seconds)
    return Prediction(path, verdict.label, verdict.score, ranked, seconds, reason=verdict.reason)


def classified(
    classify: Callable[[list[np.ndarray]], list[list[dict]]], waves: list[np.ndarray]
) -> list[list[dict] | ValueError]:
    """Each clip's scores, or the error the model refused it with: a batch that fails is classified again clip by
    clip, so one clip the model refuses costs only its own row. When every clip of a batch is refused, a plain
    probe clip (16,000 samples of silence) is tried: refused too, it is the model or its setup (a speaker-adaptive
    model not yet adapted), not the clips, and the batch's error is raised."""
    try:
        return classify(waves)
    except ValueError:
        results = [_refused(classify, wave) for wave in waves]
        probe = np.zeros(16000, np.float32)
        if all(isinstance(r, ValueError) for r in results) and isinstance(_refused(classify, probe), ValueError):
            raise
        return results


def _refused(classify, wave: np.ndarray) -> list[dict] | ValueError:
    try:
        return classify([wave])[0]
    except ValueError as err:
        return err


def classified_rows(
    clips: list[DecodedClip],
    classify: Callable[[list[np.ndarray]], list[list[dict]]],
    rate: int,
    rule: ConfidenceRule = DEFAULT_RULE,
) -> list[Prediction]:
    """The rows of decoded clips classified as one batch (:func:`classified`): a clip the model refuses gets an
    error row with the model's reason."""
    scores = classified(classify, [clip.wave for clip in clips])
    return [
        Prediction(clip.path, seconds=clip.seconds, error=f"{clip.path}: {result}")
        if isinstance(result, ValueError)
        else predicted(clip.path, result, clip.wave, rate, clip.seconds, rule, clip.speech_seconds)
        for clip, result in zip(clips, scores)
    ]


def predict_files(
    inputs: Iterable[str | Path] | str | Path,
    classify: Callable[[list[np.ndarray]], list[list[dict]]],
    rate: int,
    workers: int = 2,
    batch_size: int = 16,
    progress: bool = False,
    policy: InputPolicy = DEFAULT_POLICY,
    rule: ConfidenceRule = DEFAULT_RULE,
    longest: float | None = None,
) -> Iterator[Prediction]:
    """Yield one :class:`Prediction` per file (errors included), classifying decoded clips in batches; ``rule``
    decides when the answer is "uncertain" (:mod:`hf_ser.confidence`); files longer than ``longest`` seconds (what
    the model takes in one piece, :func:`hf_ser.inference.longest_clip_seconds`) get an error row."""
    from tqdm.auto import tqdm

    files, errors = audio_files(inputs, policy)
    yield from errors
    pending: list[DecodedClip] = []

    def flush():
        yield from classified_rows(pending, classify, rate, rule)
        pending.clear()

    bar = tqdm(total=len(files), desc="classify", unit="file", disable=not progress, file=sys.stderr)
    try:
        decoded = (
            decoded_in_workers(files, rate, policy, longest, workers)
            if workers > 1 and len(files) > 1
            else (decode_clip(f, rate, policy, longest) for f in files)
        )
        try:
            for clip in decoded:
                bar.update(1)
                if row := unclassified_row(clip):
                    yield row
                else:
                    pending.append(clip)
                    if len(pending) >= batch_size:
                        yield from flush()
        except WorkerDied:
            yield from flush()  # what was decoded still gets its rows
            raise
        if pending:
            yield from flush()
    finally:
        bar.close()


def decoded_in_workers(
    files: list[str], rate: int, policy: InputPolicy, longest: float | None, workers: int
) -> Iterator[DecodedClip]:
    """:func:`decode_clip` of every file, in order, in spawned worker processes.

    A worker that dies (a crash in the decoder, or the memory killer) takes its pool with it. The pool then restarts
    at the first file without a result, after that file is decoded alone in a worker of its own: if that worker
    dies too, the file gets an error row saying so, and the rest go on. Two files in a row whose own workers die
    mean the workers cannot run at all (typically a script without a main guard): :class:`WorkerDied`. Written here
    because ``ProcessPoolExecutor`` gives up the whole pool when one worker dies and says not which task killed it.
    """
    # spawned, not forked: the workers run the VAD, and torch's thread pools do not survive a fork of a parent
    # that already used them (the forked child can hang)
    spawn = multiprocessing.get_context("spawn")
    start, suspect, died_alone = 0, False, 0
    while start < len(files):
        todo = files[start : start + 1] if suspect else files[start:]
        pool = ProcessPoolExecutor(1 if suspect else workers, mp_context=spawn)
        n = len(todo)
        try:
            for result in pool.map(decode_clip, todo, [rate] * n, [policy] * n, [longest] * n, chunksize=4):
                start += 1
                yield result
            suspect, died_alone = False, 0
        except BrokenProcessPool as err:
            if not suspect:
                suspect = True  # the first file without a result: decode it alone
                continue
            died_alone += 1
            if died_alone == 2:
                raise WorkerDied(
                    f"decoding worker processes die even on one file at a time ({files[start - 1]}, then "
                    f"{files[start]}), after {start - 1} of {len(files)} files; the rows before them stand. Called "
                    "from a script, the call must sit under `if __name__ == '__main__':` (the workers are spawned "
                    "and import the script); else run with one worker (--workers 1)"
                ) from err
            why = "the decoding worker process died on this file (a crash in the decoder, or killed for memory)"
            yield DecodedClip(files[start], None, None, f"{files[start]}: {why}")
            start, suspect = start + 1, False
        finally:
            pool.shutdown(cancel_futures=True)


ROW_SUFFIXES = (".csv", ".jsonl")  # the formats write_predictions writes


def check_output_file(output: str | Path, what: str) -> Path:
    """``output`` as a path, refused where it is a folder: it was an IsADirectoryError traceback once every row or
    timeline (``what``) was computed."""
    output = Path(output)
    if output.is_dir():
        raise ValueError(f"--output {output} is a folder; name a file to write the {what} to")
    return output


def check_rows_output(output: str | Path) -> Path:
    """The rows' output file, refused unless its suffix names a format :func:`write_predictions` writes."""
    output = Path(output)
    if output.suffix.lower() not in ROW_SUFFIXES:  # "rows.CSV" is a CSV file too
        raise ValueError(f"--output must end in .csv or .jsonl, got {output}")
    return check_output_file(output, "rows")


def write_predictions(predictions: Iterable[Prediction], output: str | Path | None) -> list[Prediction]:
    """Write rows as CSV or JSON lines (by the file's suffix), or print them when ``output`` is None."""
    rows = []
    if output is None:
        for p in predictions:
            rows.append(p)
            if p.error:
                print(f"{p.path}: error: {p.error}", file=sys.stderr)
            elif p.label == NO_SPEECH:
                print(f"{p.path}: {NO_SPEECH}")
            elif p.label == UNCERTAIN:
                print(f"{p.path}: {UNCERTAIN} ({p.reason}); " + ", ".join(f"{k} {v:.3f}" for k, v in p.scores.items()))
            else:
                print(f"{p.path}: " + ", ".join(f"{k} {v:.3f}" for k, v in p.scores.items()))
        return rows
    output = check_rows_output(output)
    with open(output, "w", newline="") as handle:
        writer = None
        for p in predictions:
            rows.append(p)
            if output.suffix.lower() == ".jsonl":
                handle.write(json.dumps(asdict(p)) + "\n")
                continue
            if writer is None:
                writer = csv.writer(handle)
                writer.writerow(["path", "label", "score", "seconds", "error", "scores", "reason"])
            writer.writerow(
                [
                    p.path,
                    p.label or "",
                    p.score or "",
                    p.seconds or "",
                    p.error or "",
                    json.dumps(p.scores),
                    p.reason or "",
                ]
            )
            handle.flush()
    return rows
