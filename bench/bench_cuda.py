"""CPU against CUDA on one machine: both bundled models' inference (latency, throughput, agreement) and the two
costs of training the Whisper family (filling the encoder-state cache, the head's training steps).

    python bench/bench_cuda.py [--tiny ser-general] [--accurate ser-whisper-general] [--clips 64]

Needs a CUDA build of torch and a GPU (it says so and exits 2 without). Everything runs in the same process on the
same synthetic 3 s clips, CPU first, so the ratios compare like with like; the CPU side uses every core torch sees
(``torch.get_num_threads()``, in the machine column). Agreement is each clip's top label and its largest score
difference between the two devices: the scores should agree to float32 rounding, the labels on every clip.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import median, print_json_line, print_table, time_call  # noqa: E402

SECONDS, RATE = 3.0, 16000


def timed(fn: Callable[[], object], device: str, repeat: int, warmup: int = 2) -> float:
    """Median wall-clock seconds of ``fn`` on ``device`` (its queued work is waited for within each timed call)."""

    def synced() -> None:
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    return median(time_call(synced, repeat=repeat, warmup=warmup))


def inference(model: str, clips: list[np.ndarray], batch: int, accelerator: str) -> dict:
    """Latency at batch 1, hours of audio per minute at ``batch``, and CPU/CUDA agreement, for one model."""
    from hf_ser import load_classifier

    out: dict = {}
    scores = {}
    for side, device in (("cpu", "cpu"), ("accelerator", accelerator)):
        clf = load_classifier(model, device=device)
        latency = timed(lambda clf=clf: clf(clips[0], top_k=None), device, repeat=10)
        seconds = timed(lambda clf=clf: clf(clips, top_k=None, batch_size=batch), device, repeat=2, warmup=1)
        results = clf(clips, top_k=None, batch_size=batch)
        labels = sorted(r["label"] for r in results[0])
        scores[side] = np.array([[{r["label"]: r["score"] for r in rs}[k] for k in labels] for rs in results])
        out[side] = {
            "ms_per_clip": 1000 * latency,
            "hours_per_minute": len(clips) * SECONDS / 3600 / (seconds / 60),
        }
    out["top_label_agreement"] = float(np.mean(scores["cpu"].argmax(1) == scores["accelerator"].argmax(1)))
    out["max_score_difference"] = float(np.abs(scores["cpu"] - scores["accelerator"]).max())
    return out


def encoder_and_head(model: str, clips: list[np.ndarray], batch: int, accelerator: str) -> dict:
    """Clips per second through the frozen encoder (what the training cache costs) and the head's training steps
    per second on cached states of the same shape, CPU against CUDA."""
    from hf_ser import load_classifier

    clf = load_classifier(model, device="cpu")
    fe, net = clf.feature_extractor, clf.model
    mel = fe(clips[:batch], sampling_rate=RATE, return_tensors="pt", padding=True)
    features, mask = mel["input_features"], mel.get("attention_mask")
    with torch.no_grad():
        states, _ = net.encode(features[:1], None if mask is None else mask[:1])
    cached = torch.randn(batch, *states.shape[1:]).half()  # the cache stores float16 states
    labels = torch.randint(net.config.num_labels, (batch,))
    out: dict = {"state_shape": list(states.shape[1:])}
    for side, device in (("cpu", "cpu"), ("accelerator", accelerator)):
        net.to(device)
        x, m = features.to(device), None if mask is None else mask.to(device)

        def encode(net=net, x=x, m=m) -> None:
            with torch.no_grad():
                net.encode(x, m)

        net.train()
        optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
        s, y = cached.to(device), labels.to(device)

        def step(net=net, s=s, y=y, optimizer=optimizer) -> None:
            optimizer.zero_grad()
            net(encoder_states=s, labels=y).loss.backward()
            optimizer.step()

        out[side] = {
            "encoder_clips_per_s": batch / timed(encode, device, repeat=3, warmup=1),
            "head_steps_per_s": 1 / timed(step, device, repeat=20, warmup=3),
        }
        net.eval()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", default="ser-general")
    parser.add_argument("--accurate", default="ser-whisper-general")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cuda", help="the accelerator compared with the CPU ('cpu': a dry run)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"bench_cuda: this torch {torch.__version__} sees no GPU (a CUDA build and a GPU are needed)")
        sys.exit(2)
    from hf_ser.example import synthetic_speech

    clips = [synthetic_speech(SECONDS, RATE, pitch=100 + 5 * i, seed=i) for i in range(args.clips)]
    batch, device = args.batch_size, args.device
    models = {name: inference(m, clips, batch, device) for name, m in (("tiny", args.tiny), ("whisper", args.accurate))}
    training = encoder_and_head(args.accurate, clips, batch, device)
    rows = []
    for name, r in models.items():
        cpu, acc = r["cpu"], r["accelerator"]
        for key, what in (
            ("ms_per_clip", "ms / clip (batch 1)"),
            ("hours_per_minute", f"hours of audio / min (batch {batch})"),
        ):
            faster = cpu[key] / acc[key] if key == "ms_per_clip" else acc[key] / cpu[key]
            rows.append([f"{name}: {what}", f"{cpu[key]:.2f}", f"{acc[key]:.2f}", f"{faster:.1f}x"])
        agreement = f"{100 * r['top_label_agreement']:.1f} % / {r['max_score_difference']:.1e}"
        rows.append([f"{name}: same top label / largest score difference", "", agreement, ""])
    cpu, acc = training["cpu"], training["accelerator"]
    for key, what in (
        ("encoder_clips_per_s", "encoder states: clips / s"),
        ("head_steps_per_s", "head: training steps / s"),
    ):
        rows.append(
            [f"whisper {what} (batch {batch})", f"{cpu[key]:.1f}", f"{acc[key]:.1f}", f"{acc[key] / cpu[key]:.1f}x"]
        )
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    print_table(
        f"CPU ({torch.get_num_threads()} torch threads) against {name}, {len(clips)} synthetic {SECONDS:.0f} s clips",
        ["what", "CPU", name, "faster"],
        rows,
    )
    print_json_line("cuda", {"device": name, "batch_size": batch, "models": models, "training": training})


if __name__ == "__main__":
    main()
