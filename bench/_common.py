"""Small helpers shared by the benchmark scripts: timing, table and JSON-line output."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable

import torch


def time_call(fn: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


def print_json_line(name: str, payload: dict) -> None:
    print("BENCH_JSON " + json.dumps({"bench": name, "machine": machine(), **payload}, sort_keys=True))


def ravdess_folder(corpora_dir, files: int, folder) -> tuple[list[str], float]:
    """Copy the first ``files`` RAVDESS clips into ``folder`` (a batch run's input); (their paths, hours of audio)."""
    import shutil
    from pathlib import Path

    import soundfile as sf

    from hf_ser.data.corpora import load_corpus

    paths = load_corpus("ravdess", Path(corpora_dir) / "ravdess")["audio"][:files]
    Path(folder).mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copy(p, Path(folder) / Path(p).name)
    return paths, sum(sf.info(p).duration for p in paths) / 3600
