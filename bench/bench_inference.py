"""Inference speed: our batched MFCC vs librosa, our model vs wav2vec2-base, the whole pipeline.

    python bench/bench_inference.py [--clips 200] [--threads 2]

Prints a Markdown table and one ``BENCH_JSON`` line. Everything is measured in the same run on the
same synthetic 3 s clips, so the ratios hold even on a noisy shared machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, print_json_line, print_table, time_call  # noqa: E402

import hf_ser  # noqa: E402
from hf_ser.example import synthetic_voice  # noqa: E402
from hf_ser.inference import load_classifier  # noqa: E402

RATE = 16000
LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def bench_features(clips: list[np.ndarray], batch_size: int) -> dict:
    fe = hf_ser.SERFeatureExtractor(do_normalize=False)
    settings = dict(
        sr=RATE, n_mfcc=fe.n_mfcc, n_fft=fe.n_fft, hop_length=fe.hop_length, win_length=fe.win_length, n_mels=fe.n_mels
    )

    def ours():
        for i in range(0, len(clips), batch_size):
            fe(clips[i : i + batch_size], return_tensors="np")

    def reference():
        for clip in clips:
            librosa.feature.mfcc(y=clip, **settings)

    ours_s = median(time_call(ours, repeat=3))
    ref_s = median(time_call(reference, repeat=3))
    return {
        "clips": len(clips),
        "ours_clips_per_s": len(clips) / ours_s,
        "librosa_clips_per_s": len(clips) / ref_s,
        "speedup": ref_s / ours_s,
    }


def bench_models(clip: np.ndarray) -> dict:
    config = hf_ser.SERConfig(id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})
    ours = hf_ser.SERForAudioClassification(config).eval()
    w2v = Wav2Vec2ForSequenceClassification(Wav2Vec2Config(num_labels=len(LABELS))).eval()  # wav2vec2-base shape
    feats = hf_ser.SERFeatureExtractor()(clip, return_tensors="pt")["input_features"]
    wave = torch.from_numpy(clip)[None]
    out = {
        "ours_params": sum(p.numel() for p in ours.parameters()),
        "wav2vec2_params": sum(p.numel() for p in w2v.parameters()),
    }
    with torch.inference_mode():
        for batch, reps_ours, reps_w2v in [(1, 50, 5), (32, 10, 2)]:
            f = feats.expand(batch, -1, -1).contiguous()
            w = wave.expand(batch, -1).contiguous()
            out[f"ours_b{batch}_s"] = median(time_call(lambda f=f: ours(input_features=f), reps_ours, warmup=3))
            out[f"wav2vec2_b{batch}_s"] = median(time_call(lambda w=w: w2v(input_values=w), reps_w2v))
            out[f"speedup_b{batch}"] = out[f"wav2vec2_b{batch}_s"] / out[f"ours_b{batch}_s"]
    return out


def bench_pipeline(clip: np.ndarray, workdir: Path) -> dict:
    config = hf_ser.SERConfig(id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})
    model_dir = workdir / "model"
    hf_ser.SERForAudioClassification(config).save_pretrained(model_dir)
    hf_ser.SERFeatureExtractor().save_pretrained(model_dir)
    path = workdir / "clip.wav"
    sf.write(path, clip, RATE)
    classifier = load_classifier(model_dir)
    times = time_call(lambda: classifier(str(path), top_k=None), repeat=50, warmup=3)
    return {"pipeline_median_ms": 1000 * median(times), "pipeline_p90_ms": 1000 * float(np.percentile(times, 90))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=50, help="clips per call of our extractor")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = [synthetic_voice(3.0, RATE, pitch=120 + 2 * (i % 60), seed=i) for i in range(args.clips)]

    feats = bench_features(clips, args.batch_size)
    models = bench_models(clips[0])
    with tempfile.TemporaryDirectory() as tmp:
        pipe = bench_pipeline(clips[0], Path(tmp))

    print_table(
        f"(a) MFCC extraction, {args.clips} clips of 3 s at 16 kHz (n_mfcc 40, n_fft 512, hop 160, 64 mels)",
        ["extractor", "clips/s", "ratio"],
        [
            [
                "hf-ser SERFeatureExtractor (batched torch)",
                f"{feats['ours_clips_per_s']:.0f}",
                f"{feats['speedup']:.2f}x",
            ],
            ["librosa.feature.mfcc (per clip)", f"{feats['librosa_clips_per_s']:.0f}", "1.00x"],
        ],
    )
    print_table(
        "(b) model forward on CPU, 3 s clips (features precomputed for ours, raw audio for wav2vec2)",
        ["model", "params", "batch 1 (ms)", "batch 32 (ms)"],
        [
            [
                "hf-ser default",
                f"{models['ours_params']:,}",
                f"{1000 * models['ours_b1_s']:.2f}",
                f"{1000 * models['ours_b32_s']:.1f}",
            ],
            [
                "Wav2Vec2ForSequenceClassification (base)",
                f"{models['wav2vec2_params']:,}",
                f"{1000 * models['wav2vec2_b1_s']:.1f}",
                f"{1000 * models['wav2vec2_b32_s']:.0f}",
            ],
            ["speedup", "", f"{models['speedup_b1']:.0f}x", f"{models['speedup_b32']:.0f}x"],
        ],
    )
    print_table(
        "(c) pipeline('audio-classification') on a 3 s WAV file, batch 1 (decode + MFCC + model)",
        ["metric", "value"],
        [["median (ms)", f"{pipe['pipeline_median_ms']:.2f}"], ["p90 (ms)", f"{pipe['pipeline_p90_ms']:.2f}"]],
    )
    targets = {
        "features_speedup>=2": feats["speedup"] >= 2,
        "model_speedup_b1>=200": models["speedup_b1"] >= 200,
        "pipeline_median_ms<=10": pipe["pipeline_median_ms"] <= 10,
    }
    print("\ntargets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in targets.items()))
    print_json_line("inference", {**feats, **models, **pipe, "targets": targets})


if __name__ == "__main__":
    main()
