"""Ray engine against the local batch run: hours of audio per minute on this machine, the same files in one run.

    python bench/bench_ray.py [--files 480] [--model ser-general] [--backend torch]

(a) the local batch run (``hf_ser.batch.predict_files``: 2 decoding processes, the model in the main process)
and (b) ``hf_ser.ray_batch.predict_with_ray`` on a local Ray instance (one actor per core, each decoding and
classifying its own batches), over the same real RAVDESS files. Both walls include loading the model (and, for
Ray, starting the instance and its actors): what a user waits for. A second Ray run over a fresh output shows the
cost once the instance is up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import print_json_line, print_table, ravdess_folder  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=480)
    parser.add_argument("--model", default=None, help="default: the default model")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    args = parser.parse_args()
    import ray

    from hf_ser.batch import predict_files
    from hf_ser.inference import describe, load_classifier
    from hf_ser.ray_batch import predict_with_ray, read_rows

    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        paths, hours = ravdess_folder(CORPORA, args.files, folder)

        start = time.perf_counter()
        clf = load_classifier(args.model, backend=args.backend)
        local = list(
            predict_files(
                [folder],
                lambda waves: clf(list(waves), top_k=None, batch_size=len(waves)),
                clf.sampling_rate,
                workers=2,
                batch_size=16,
            )
        )
        local_s = time.perf_counter() - start

        start = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        predict_with_ray([folder], Path(tmp) / "ray1.jsonl", model=args.model, backend=args.backend)
        ray_s = time.perf_counter() - start
        start = time.perf_counter()
        predict_with_ray([folder], Path(tmp) / "ray2.jsonl", model=args.model, backend=args.backend)
        warm_s = time.perf_counter() - start
        rows = read_rows(Path(tmp) / "ray1.jsonl")
        ray.shutdown()
    same = sum(a.label == b["label"] for a, b in zip(sorted(local, key=lambda p: p.path), rows))

    def per_minute(seconds: float) -> str:
        return f"{hours / (seconds / 60):.2f}"

    print_table(
        f"{len(paths)} RAVDESS files, {60 * hours:.1f} min of audio, {cores} cores, "
        f"{describe(args.model)}, backend {args.backend}",
        ["engine", "wall (s)", "hours of audio per minute", "vs local"],
        [
            [
                "local batch run (2 decoding processes), model load included",
                f"{local_s:.1f}",
                per_minute(local_s),
                "1.00x",
            ],
            [
                f"Ray Data, {cores} actors, instance start included",
                f"{ray_s:.1f}",
                per_minute(ray_s),
                f"{local_s / ray_s:.2f}x",
            ],
            [
                "Ray Data, instance already up (actors started anew)",
                f"{warm_s:.1f}",
                per_minute(warm_s),
                f"{local_s / warm_s:.2f}x",
            ],
        ],
    )
    print(f"same top label in both runs: {same} of {len(paths)} files")
    print_json_line(
        "ray",
        {
            "files": len(paths),
            "audio_hours": hours,
            "cores": cores,
            "backend": args.backend,
            "local_s": local_s,
            "ray_s": ray_s,
            "ray_warm_s": warm_s,
            "local_hours_per_min": hours / (local_s / 60),
            "ray_hours_per_min": hours / (ray_s / 60),
            "ray_warm_hours_per_min": hours / (warm_s / 60),
            "same_label": same,
        },
    )


if __name__ == "__main__":
    main()
