"""A self-contained end-to-end run: build a model, save it, classify a generated clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from .inference import load_classifier
from .models.registry import SERConfig, SERFeatureExtractor, SERForAudioClassification

EXAMPLE_LABELS = ["neutral", "happy", "sad", "angry"]


def synthetic_voice(seconds: float = 3.0, rate: int = 22050, pitch: float = 180.0, seed: int = 0) -> np.ndarray:
    """A vowel-like harmonic signal with vibrato and a little noise (not speech, but speech-shaped)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = pitch * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(h * phase) / h for h in range(1, 8))
    envelope = np.clip(np.sin(np.pi * t / seconds), 0, None)
    return (0.3 * voice * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


VOWEL_FORMANTS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]


def synthetic_speech(seconds: float = 3.0, rate: int = 16000, pitch: float = 140.0, seed: int = 0) -> np.ndarray:
    """Syllables of voiced sound whose formants glide between vowels, with falling pitch, consonant-like noise
    bursts and pauses: not speech, but enough like it that Silero VAD calls most of it speech (the input-policy
    tests use it; a steady vowel such as :func:`synthetic_voice` is not speech to the VAD)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate))
    start = 0.1
    while start < seconds - 0.25:
        duration = rng.uniform(0.12, 0.25)
        t = np.arange(int(duration * rate)) / rate
        f0 = pitch * (1.1 - 0.2 * t / duration) * (1 + 0.05 * rng.standard_normal())
        phase = 2 * np.pi * np.cumsum(f0) / rate
        a, b = VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))], VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))]
        glide = t / duration
        syllable = np.zeros_like(t)
        for h in range(1, int(4000 / pitch)):
            gain = sum(
                1.0 / (1 + ((h * f0 - f) / (80 + 0.1 * f)) ** 2)
                for f in (fa * (1 - glide) + fb * glide for fa, fb in zip(a, b))
            )
            syllable += gain / h * np.sin(h * phase)
        first, burst = int(start * rate), int(0.04 * rate)
        out[first - burst : first] += 0.05 * rng.standard_normal(burst) * np.hanning(burst)
        out[first : first + len(t)] += syllable * np.sin(np.pi * t / duration) ** 0.5
        start += duration + rng.uniform(0.05, 0.12)
    out = 0.3 * out / max(np.abs(out).max(), 1e-9)
    return (out + 0.002 * rng.standard_normal(out.size)).astype(np.float32)


def run_example(output_dir: Path) -> list[dict]:
    output_dir.mkdir(parents=True, exist_ok=True)
    config = SERConfig(id2label=dict(enumerate(EXAMPLE_LABELS)), label2id={k: i for i, k in enumerate(EXAMPLE_LABELS)})
    model = SERForAudioClassification(config)
    model_dir = output_dir / "untrained-model"
    model.save_pretrained(model_dir)
    SERFeatureExtractor().save_pretrained(model_dir)
    clip = output_dir / "synthetic_voice_22k_stereo.wav"
    voice = synthetic_voice()
    sf.write(clip, np.stack([voice, 0.5 * voice], axis=1), 22050)
    scores = load_classifier(model_dir)(str(clip), top_k=None)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {model_dir} ({n_params:,} parameters, random weights: scores are not meaningful)")
    print(f"clip:  {clip} (3 s, 22.05 kHz stereo; decoded with soundfile, resampled with soxr)")
    for item in scores:
        print(f"  {item['label']:<8} {item['score']:.4f}")
    return scores
