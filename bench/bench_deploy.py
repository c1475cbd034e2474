"""Deployment: torch vs ONNX vs ONNX int8 — cold start of one CLI prediction, per-clip latency, peak memory.

    python bench/bench_deploy.py [--runs 3]

Cold start is a fresh ``hf-ser predict clip.wav`` process (import, model load, decode, predict), wall time and
peak resident memory (GNU time's maximum RSS; needs /usr/bin/time), median of ``--runs``. Latency is
in-process, batch 1, on a 3 s clip file (decode + features + model). Targets: ONNX cold start >= 5x faster
than torch, peak <= 150 MB.
"""

from __future__ import annotations

import argparse
import os
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

from _common import median, print_json_line, print_table, time_call  # noqa: E402

HF_SER = str(Path(sys.executable).parent / "hf-ser")


def cold_start(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one CLI run in a fresh process.

    The peak comes from GNU time (``/usr/bin/time -f %M``): the children's ru_maxrss of this process would count
    the pages a forked child shares with this (torch-importing) parent before it execs.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        command = ["/usr/bin/time", "-o", report.name, "-f", "%M", HF_SER, *args]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
        wall = time.perf_counter() - start
        return wall, int(report.read().strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from hf_ser.example import synthetic_voice
    from hf_ser.inference import load_classifier, resolve_model
    from hf_ser.onnx.runtime import OnnxClassifier

    onnx_dir = resolve_model(None) / "onnx"
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        sf.write(clip, synthetic_voice(3.0, 16000), 16000)
        rows, payload = [], {}
        variants = {
            "torch": ["predict", str(clip)],
            "onnx": ["predict", str(clip), "--backend", "onnx"],
            "onnx int8": ["predict", str(clip), "--backend", "onnx", "--int8"],
        }
        for name in ["onnx int8", "onnx", "torch"]:
            walls, peaks = zip(*[cold_start(variants[name]) for _ in range(args.runs)])
            payload[name] = {"cold_start_s": median(list(walls)), "peak_mb": max(peaks)}
        classifiers = {
            "torch": load_classifier(),
            "onnx": OnnxClassifier(onnx_dir),
            "onnx int8": OnnxClassifier(onnx_dir, int8=True),
        }
        latency = {
            name: median(time_call(lambda c=clf: c(str(clip)), repeat=30, warmup=3))
            for name, clf in classifiers.items()
        }
        for name in ["torch", "onnx", "onnx int8"]:
            payload[name]["latency_ms"] = 1000 * latency[name]
            ratio = payload["torch"]["cold_start_s"] / payload[name]["cold_start_s"]
            payload[name]["cold_start_speedup"] = ratio
            rows.append(
                [
                    name,
                    f"{payload[name]['cold_start_s']:.2f}",
                    f"{ratio:.1f}x",
                    f"{payload[name]['peak_mb']:.0f}",
                    f"{payload[name]['latency_ms']:.2f}",
                ]
            )
    print_table(
        "one CLI prediction from a fresh process, and in-process latency (3 s WAV, batch 1)",
        ["backend", "cold start (s)", "vs torch", "peak memory (MB)", "latency (ms)"],
        rows,
    )
    targets = {
        "onnx_cold_start_speedup>=5": payload["onnx"]["cold_start_speedup"] >= 5,
        "onnx_peak_mb<=150": payload["onnx"]["peak_mb"] <= 150,
    }
    print("\ntargets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in targets.items()))
    print_json_line("deploy", {**payload, "targets": targets, "clip_s": 3.0, "numpy": np.__version__})


if __name__ == "__main__":
    main()
