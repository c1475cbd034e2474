"""Batch runs that lose nothing: walk files and folders, decode in worker processes, classify in batches,
one row per file; every file that cannot be read is recorded with the reason, and the rest finish.

Clips shorter than :data:`MIN_SECONDS` get an error row; clips whose loudest 25 ms frame is below
:data:`SILENCE_DBFS` get the label ``"no speech"`` instead of an emotion. This module imports neither torch
nor transformers: the backend (torch pipeline or ONNX) is passed in.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .models.ser.audio_ser import AudioDecodeError, load_audio

MIN_SECONDS = 0.25  # shorter clips carry too little prosody to classify (and MFCC context is ±4 frames)
SILENCE_DBFS = -50.0  # loudest 25 ms frame below this: digital or near silence
NO_SPEECH = "no speech"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf", ".opus"}


@dataclass
class Prediction:
    path: str
    label: str | None = None
    score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None


def audio_files(inputs: Iterable[str | Path]) -> tuple[list[str], list[Prediction]]:
    """Files given directly, plus every audio file under given folders (sorted); missing paths are errors."""
    files, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.is_file():
            files.append(str(path))
        else:
            errors.append(Prediction(str(path), error="no such file or folder"))
    return files, errors


def loudest_frame_dbfs(wave: np.ndarray, rate: int, frame_seconds: float = 0.025) -> float:
    size = max(int(rate * frame_seconds), 1)
    usable = len(wave) - len(wave) % size or len(wave)
    frames = wave[:usable].reshape(-1, min(size, usable))
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)).max()
    return float(20 * np.log10(max(rms, 1e-12)))


def decode_clip(path: str, rate: int) -> tuple[str, np.ndarray | None, float | None, str | None]:
    """(path, waveform at ``rate`` or None, seconds, error). Runs in worker processes."""
    try:
        wave, _ = load_audio(path, rate)
    except (AudioDecodeError, ValueError) as err:
        return path, None, None, str(err)
    seconds = len(wave) / rate
    if seconds < MIN_SECONDS:
        return path, None, seconds, f"{path}: clip is {seconds:.3f} s long; at least {MIN_SECONDS} s are needed"
    return path, wave, seconds, None


def predict_files(
    inputs: Iterable[str | Path],
    classify: Callable[[list[np.ndarray]], list[list[dict]]],
    rate: int,
    workers: int = 2,
    batch_size: int = 16,
    progress: bool = False,
) -> Iterator[Prediction]:
    """Yield one :class:`Prediction` per file (errors included), classifying decoded clips in batches."""
    from tqdm.auto import tqdm

    files, errors = audio_files(inputs)
    yield from errors
    pending: list[tuple[str, np.ndarray, float]] = []

    def flush():
        results = classify([w for _, w, _ in pending])
        for (path, _, seconds), scores in zip(pending, results):
            ranked = {d["label"]: float(d["score"]) for d in scores}
            top = max(ranked, key=ranked.get)
            yield Prediction(path, top, ranked[top], ranked, seconds)
        pending.clear()

    bar = tqdm(total=len(files), desc="classify", unit="file", disable=not progress, file=sys.stderr)
    decoded = (
        ProcessPoolExecutor(workers).map(decode_clip, files, [rate] * len(files), chunksize=4)
        if workers > 1 and len(files) > 1
        else (decode_clip(f, rate) for f in files)
    )
    for path, wave, seconds, error in decoded:
        bar.update(1)
        if error:
            yield Prediction(path, seconds=seconds, error=error)
        elif loudest_frame_dbfs(wave, rate) < SILENCE_DBFS:
            yield Prediction(path, NO_SPEECH, None, {}, seconds)
        else:
            pending.append((path, wave, seconds))
            if len(pending) >= batch_size:
                yield from flush()
    if pending:
        yield from flush()
    bar.close()


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
            else:
                print(f"{p.path}: " + ", ".join(f"{k} {v:.3f}" for k, v in p.scores.items()))
        return rows
    output = Path(output)
    if output.suffix not in (".csv", ".jsonl"):
        raise ValueError(f"--output must end in .csv or .jsonl, got {output}")
    with open(output, "w", newline="") as handle:
        writer = None
        for p in predictions:
            rows.append(p)
            if output.suffix == ".jsonl":
                handle.write(json.dumps(asdict(p)) + "\n")
                continue
            if writer is None:
                writer = csv.writer(handle)
                writer.writerow(["path", "label", "score", "seconds", "error", "scores"])
            writer.writerow(
                [p.path, p.label or "", p.score or "", p.seconds or "", p.error or "", json.dumps(p.scores)]
            )
            handle.flush()
    return rows
