"""Tiny vs Whisper-base model in one run: ms per 3 s clip at batch 1, hours of audio per minute through batched
pipeline calls, and peak memory of a fresh process that loads the model and classifies one clip.

    python bench/bench_models.py [--tiny ser-general] [--accurate ser-whisper-general] [--clips 48]

Both models are bundled names (or folders). Synthetic speech-like clips of 3 s; the same clips for both models.
Run on an otherwise idle machine; quote the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import median, print_json_line, print_table, time_call  # noqa: E402

PEAK = r"""
import json, resource, sys
from hf_ser import load_classifier
from hf_ser.example import synthetic_speech
clf = load_classifier(sys.argv[1])
clf(synthetic_speech(3.0, 16000), top_k=None)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_memory(model: str) -> float:
    run = subprocess.run([sys.executable, "-c", PEAK, model], capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])["peak_mb"]


def measure(model: str, clips: list, batch: int = 8) -> dict:
    from hf_ser import load_classifier

    started = time.perf_counter()
    clf = load_classifier(model)
    load_seconds = time.perf_counter() - started
    latency = median(time_call(lambda: clf(clips[0], top_k=None), repeat=10, warmup=2))
    start = time.perf_counter()
    clf(clips, top_k=None, batch_size=batch)
    seconds = time.perf_counter() - start
    audio_hours = len(clips) * 3.0 / 3600
    return {
        "load_s": load_seconds,
        "ms_per_clip": 1000 * latency,
        "hours_per_minute": audio_hours / (seconds / 60),
        "parameters": sum(p.numel() for p in clf.model.parameters()),
        "peak_mb": peak_memory(model),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", default="ser-general")
    parser.add_argument("--accurate", default="ser-whisper-general")
    parser.add_argument("--clips", type=int, default=48)
    args = parser.parse_args()
    from hf_ser.example import synthetic_speech

    clips = [synthetic_speech(3.0, 16000, pitch=100 + 5 * i, seed=i) for i in range(args.clips)]
    results = {name: measure(model, clips) for name, model in (("tiny", args.tiny), ("whisper", args.accurate))}
    tiny, whisper = results["tiny"], results["whisper"]
    rows = [
        [
            name,
            f"{r['parameters']:,}",
            f"{r['ms_per_clip']:.1f}",
            f"{r['hours_per_minute']:.2f}",
            f"{r['peak_mb']:.0f}",
            f"{r['load_s']:.1f}",
        ]
        for name, r in results.items()
    ]
    rows.append(
        [
            "whisper / tiny",
            f"{whisper['parameters'] / tiny['parameters']:.0f}x",
            f"{whisper['ms_per_clip'] / tiny['ms_per_clip']:.1f}x",
            f"{whisper['hours_per_minute'] / tiny['hours_per_minute']:.2f}x",
            f"{whisper['peak_mb'] / tiny['peak_mb']:.1f}x",
            f"{whisper['load_s'] / tiny['load_s']:.1f}x",
        ]
    )
    print_table(
        f"Tiny ({args.tiny}) vs Whisper-base ({args.accurate}), 3 s clips, torch backend",
        ["model", "parameters", "ms / clip (batch 1)", "hours of audio / min (batch 8)", "peak MB", "load s"],
        rows,
    )
    print_json_line("models", results)


if __name__ == "__main__":
    main()
