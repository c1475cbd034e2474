"""Shared fixtures: synthetic audio, tiny saved models, the real-corpora location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import hf_ser  # noqa: E402
from hf_ser.example import synthetic_speech, synthetic_voice  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
LABELS = ["neutral", "happy", "sad", "angry"]
# The paper's feature settings: librosa MFCC at 22.05 kHz, 2.5 s read from 0.6 s.
PAPER_FEATURES = dict(
    sampling_rate=22050,
    n_mfcc=20,
    n_fft=2048,
    hop_length=512,
    win_length=None,
    n_mels=128,
    max_duration=2.5,
    offset=0.6,
    do_normalize=False,
)


def pytest_collection_modifyitems(config, items):
    if SHARED_CORPORA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"real corpora not found at {SHARED_CORPORA}")
    for item in items:
        if "real_data" in item.keywords:
            item.add_marker(skip)


def run_fresh_python(script: str, args: list[str], tmp_path: Path):
    """Run ``script`` in a fresh Python, offline, with a private modules cache (transformers copies remote code
    there): a script for a user without hf-ser makes ``import hf_ser`` fail itself (``sys.modules["hf_ser"] =
    None``). Returns the last line of its stdout, parsed as JSON."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    # no GPU: transformers' own pipeline takes one when it sees one, and these scripts' answers are compared with
    # hf-ser's on the CPU (its default), which a GPU's TF32 convolutions miss by up to 3e-3
    env["CUDA_VISIBLE_DEVICES"] = ""
    run = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture
def voice():
    """A function (seconds, rate, pitch, seed) -> float32 speech-shaped signal."""
    return synthetic_voice


def make_model(tmp_path: Path, labels=LABELS, config_kwargs=None, extractor_kwargs=None, seed: int = 0) -> Path:
    """Save a randomly initialised model whose logits clearly differ between inputs.

    Batch-norm statistics are perturbed so random weights give peaked, input-dependent scores:
    comparisons between two ways of computing them are then meaningful.
    """
    torch.manual_seed(seed)
    config = hf_ser.SERConfig(
        id2label=dict(enumerate(labels)),
        label2id={k: i for i, k in enumerate(labels)},
        initializer_range=0.1,
        **(config_kwargs or {}),
    )
    model = hf_ser.SERForAudioClassification(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    hf_ser.SERFeatureExtractor(**(extractor_kwargs or {})).save_pretrained(folder)
    return folder


@pytest.fixture
def model_dir(tmp_path):
    return make_model(tmp_path)


@pytest.fixture
def speech():
    """A function (seconds, rate, pitch, seed) -> float32 syllabic signal that Silero VAD calls speech."""
    return synthetic_speech


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
