"""Data pipeline speed on real RAVDESS: load → speaker-independent split → 3 augmentations → MFCC.

    python bench/bench_data.py [--data-dir ../shared/corpora/ravdess] [--num-proc 2]

Runs the whole chain twice in one process against a fresh cache folder: cold, then again from the
datasets cache. Prints a table per stage (seconds, clips/s) and a ``BENCH_JSON`` line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import datasets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_json_line, print_table  # noqa: E402

from hf_ser import SERFeatureExtractor  # noqa: E402
from hf_ser.data import extract_features, speaker_independent_split  # noqa: E402
from hf_ser.data.augment import AugmentConfig, augment  # noqa: E402
from hf_ser.data.corpora import load_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
THREE_COPIES = AugmentConfig.from_value(
    [
        [{"name": "PeakRelativeGaussianNoise", "max_factor": 0.035}],
        [{"name": "PitchShift", "min_semitones": 2.0, "max_semitones": 2.0, "p": 1.0}],
        [
            {"name": "PitchShift", "min_semitones": 2.0, "max_semitones": 2.0, "p": 1.0},
            {"name": "PeakRelativeGaussianNoise", "max_factor": 0.035},
        ],
    ]
)


def run_chain(data_dir: Path, cache_dir: Path, num_proc: int) -> dict:
    stages = {}
    start = time.perf_counter()
    ds = load_corpus("ravdess", data_dir)
    stages["load"] = (time.perf_counter() - start, len(ds))
    start = time.perf_counter()
    splits = speaker_independent_split(ds, test_size=0.2, val_size=0.1, seed=0)
    stages["split"] = (time.perf_counter() - start, len(ds))
    start = time.perf_counter()
    splits["train"] = augment(splits["train"], THREE_COPIES, seed=0, num_proc=num_proc, cache_dir=cache_dir)
    stages["augment (3 copies)"] = (time.perf_counter() - start, len(splits["train"]))
    start = time.perf_counter()
    feats = extract_features(splits, SERFeatureExtractor(), num_proc=num_proc, cache_dir=cache_dir)
    stages["features"] = (time.perf_counter() - start, sum(len(v) for v in feats.values()))
    stages["total"] = (sum(t for t, _ in stages.values()), sum(len(v) for v in feats.values()))
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "corpora" / "ravdess")
    parser.add_argument("--num-proc", type=int, default=2)
    args = parser.parse_args()
    if not args.data_dir.is_dir():
        sys.exit(f"no RAVDESS folder at {args.data_dir}")
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        cold = run_chain(args.data_dir, Path(cache), args.num_proc)
        warm = run_chain(args.data_dir, Path(cache), args.num_proc)
    rows = [
        [
            stage,
            f"{cold[stage][1]}",
            f"{cold[stage][0]:.2f}",
            f"{cold[stage][1] / max(cold[stage][0], 1e-9):.0f}",
            f"{warm[stage][0]:.2f}",
        ]
        for stage in cold
    ]
    print_table(
        f"RAVDESS data pipeline, num_proc={args.num_proc}",
        ["stage", "rows out", "cold (s)", "rows/s", "cached rerun (s)"],
        rows,
    )
    targets = {"cold_total<=90s": cold["total"][0] <= 90, "cached_total<=5s": warm["total"][0] <= 5}
    print("\ntargets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in targets.items()))
    print_json_line(
        "data",
        {
            "num_proc": args.num_proc,
            "cold_s": {k: v[0] for k, v in cold.items()},
            "cached_s": {k: v[0] for k, v in warm.items()},
            "rows": {k: v[1] for k, v in cold.items()},
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
