"""Batch runs and long recordings: hours of audio per minute, against a plain loop of pipeline calls.

    python bench/bench_batch.py [--files 240] [--hours 1.0]

(a) the batch run (``hf_ser.batch.predict_files``: decoding in 2 worker processes, batches of 16) against a
plain Python loop of ``classifier(path)`` over the same real RAVDESS files, in the same process with the model
loaded; and the whole ``hf-ser predict FOLDER --output preds.csv`` command, process start included.
(b) ``hf-ser predict long.wav --segments`` on a generated recording of ``--hours`` (RAVDESS clips and pauses,
repeated), with its wall time and peak memory, against the same file's size in memory as float32.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import print_json_line, print_table, ravdess_folder  # noqa: E402

HF_SER = str(Path(sys.executable).parent / "hf-ser")
CORPORA = ROOT.parent / "shared" / "corpora"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1440)
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    from hf_ser.audio import load_audio
    from hf_ser.inference import load_classifier

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        paths, audio_hours = ravdess_folder(CORPORA, args.files, folder)
        start = time.perf_counter()
        subprocess.run([HF_SER, "predict", str(folder), "--output", str(Path(tmp) / "p.csv")], check=True)
        cli_s = time.perf_counter() - start  # includes starting Python, importing torch, loading the model
        classifier = load_classifier()
        from hf_ser.batch import predict_files

        def classify(waves):
            return classifier(list(waves), top_k=None, batch_size=len(waves))

        start = time.perf_counter()
        rows = list(predict_files([folder], classify, 16000, workers=2, batch_size=16))
        batch_s = time.perf_counter() - start
        assert len(rows) == len(paths) and not any(r.error for r in rows)
        start = time.perf_counter()
        for p in sorted(folder.iterdir()):
            classifier(str(p))
        loop_s = time.perf_counter() - start

        clips = [load_audio(p, 16000)[0] for p in paths[:40]]
        unit = np.concatenate([np.concatenate([c, np.zeros(16000, np.float32)]) for c in clips])
        repeats = int(np.ceil(args.hours * 3600 * 16000 / len(unit)))
        long_path = Path(tmp) / "long.wav"
        with sf.SoundFile(long_path, "w", 16000, 1, subtype="PCM_16") as handle:
            for _ in range(repeats):
                handle.write(unit)
        seconds = sf.info(long_path).duration
        report = Path(tmp) / "time.txt"
        command = ["/usr/bin/time", "-o", str(report), "-f", "%M", HF_SER, "predict", str(long_path), "--segments"]
        start = time.perf_counter()
        subprocess.run([*command, "--output", str(Path(tmp) / "s.json")], check=True)
        segments_s = time.perf_counter() - start
        peak_mb = int(report.read_text().strip().splitlines()[-1]) / 1024  # GNU time's maximum RSS of that process

    def per_minute(seconds: float) -> str:
        return f"{audio_hours / (seconds / 60):.2f}"

    rows = [
        ["batch run: predict_files (2 decode workers, batch 16)", f"{batch_s:.1f}", per_minute(batch_s)],
        ["loop of classifier(path), same process", f"{loop_s:.1f}", per_minute(loop_s)],
        ["hf-ser predict FOLDER --output (process start included)", f"{cli_s:.1f}", per_minute(cli_s)],
    ]
    print_table(
        f"(a) {len(paths)} RAVDESS files, {60 * audio_hours:.1f} min of audio",
        ["method", "wall (s)", "hours of audio per minute"],
        rows,
    )
    print(f"batch run vs loop: {loop_s / batch_s:.2f}x")
    print_table(
        "(b) emotion over time of one long recording",
        ["recording", "wall (s)", "x real time", "peak memory (MB)", "file as float32 (MB)"],
        [
            [
                f"{seconds / 3600:.2f} h",
                f"{segments_s:.0f}",
                f"{seconds / segments_s:.0f}",
                f"{peak_mb:.0f}",
                f"{seconds * 16000 * 4 / 2**20:.0f}",
            ]
        ],
    )
    print_json_line(
        "batch",
        {
            "files": len(paths),
            "audio_hours": audio_hours,
            "batch_s": batch_s,
            "cli_s": cli_s,
            "loop_s": loop_s,
            "batch_hours_per_min": audio_hours / (batch_s / 60),
            "loop_hours_per_min": audio_hours / (loop_s / 60),
            "long_hours": seconds / 3600,
            "segments_s": segments_s,
            "segments_peak_mb": peak_mb,
        },
    )


if __name__ == "__main__":
    main()
