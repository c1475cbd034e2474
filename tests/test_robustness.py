"""Level and channel robustness: what the features promise, and what the shipped model delivers on real clips."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_ser import SERFeatureExtractor

from .conftest import SHARED_CORPORA

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench(module: str, *names: str) -> tuple:
    """Names from a script in bench/ (not a package: its folder goes on sys.path, as running the script does)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    loaded = importlib.import_module(module)
    return tuple(getattr(loaded, name) for name in names)


@pytest.mark.parametrize("feature_type", ["mfcc", "log_mel"])
def test_level_normalisation_makes_features_gain_invariant(voice, feature_type):
    fe = SERFeatureExtractor(mean_normalization="level", feature_type=feature_type, deltas=1)
    plain = SERFeatureExtractor(feature_type=feature_type)
    wave = voice(2.0, 16000, seed=4)
    reference = fe(wave, return_tensors="np")["input_features"][0]
    for gain_db in (-24, -12, 6):
        scaled = wave * 10 ** (gain_db / 20)
        np.testing.assert_allclose(fe(scaled, return_tensors="np")["input_features"][0], reference, atol=2e-3)
        shift = (
            plain(scaled, return_tensors="np")["input_features"][0]
            - plain(wave, return_tensors="np")["input_features"][0]
        )
        assert np.abs(shift).max() > 1.0  # without it, the gain moves the features


def test_cepstral_mean_normalisation_cancels_a_fixed_channel(voice):
    from scipy.signal import lfilter

    fe = SERFeatureExtractor(mean_normalization="all")
    wave = voice(3.0, 16000, seed=2)
    coloured = lfilter([1.0, -0.6], [1.0], wave).astype(np.float32)  # a fixed pre-emphasis "microphone"
    a = fe(wave, return_tensors="np")["input_features"][0]
    b = fe(coloured, return_tensors="np")["input_features"][0]
    plain = SERFeatureExtractor()
    before = np.abs(
        plain(wave, return_tensors="np")["input_features"][0].mean(0)
        - plain(coloured, return_tensors="np")["input_features"][0].mean(0)
    ).max()
    assert np.abs(a.mean(0) - b.mean(0)).max() < 1e-3 < before


def test_per_speaker_standardisation_uses_each_speakers_own_frames():
    from datasets import Array2D, Dataset, Features, Value

    from hf_ser.data.features import standardize_per_group

    rng = np.random.default_rng(0)
    rows = {"input_features": [], "speaker": []}
    for speaker, (mean, std) in {"a": (5.0, 2.0), "b": (-3.0, 0.5)}.items():
        for _ in range(4):
            rows["input_features"].append((mean + std * rng.standard_normal((30, 3))).astype(np.float32))
            rows["speaker"].append(speaker)
    features = Features({"input_features": Array2D((None, 3), "float32"), "speaker": Value("string")})
    out = standardize_per_group(Dataset.from_dict(rows, features), "input_features").with_format("numpy")
    for speaker in "ab":
        frames = np.concatenate([r["input_features"] for r in out if r["speaker"] == speaker])
        np.testing.assert_allclose(frames.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(frames.std(0), 1, atol=1e-4)


@pytest.mark.real_data
def test_the_tiny_default_ignores_recording_gain_in_the_bench():
    """Top-label agreement with 0 dB on real RAVDESS clips, -24 to +6 dB, through the bench's own code: target >= 95
    %, which the tiny model meets. The Whisper default (its log-mel keeps the absolute level; 91.7 % at its worst
    gain in bench/results/robustness.txt, lower on its own test speakers: a known miss) is held to its bound per
    gain through the CLI by test_real_clips_keep_their_label_from_minus_30_to_plus_10_db (real RAVDESS clips,
    -30 to +10 dB): a second pass of that model over the same property here cost the suite a minute."""
    model, bound = "ser-general", 0.95
    GAINS_DB, agreement, sample_clips = bench("bench_robustness", "GAINS_DB", "agreement", "sample_clips")

    from hf_ser.inference import resolve_model

    try:
        resolve_model(model)
    except ValueError as err:
        pytest.skip(str(err))
    clips, _ = sample_clips(SHARED_CORPORA, 60)
    gains = tuple(g for g in GAINS_DB if -24 <= g <= 6)
    result, _ = agreement(model, clips, gains=gains, curves=False)  # only what is asserted: half the passes
    assert result.keys() == {f"gain {g:+d} dB" for g in gains}
    assert min(result.values()) >= bound, result


@pytest.mark.real_data
def test_the_bench_can_take_only_clips_of_speakers_a_model_never_heard():
    (held_out_clips,) = bench("bench_robustness", "held_out_clips")

    from hf_ser.data.corpora import load_corpus
    from hf_ser.inference import resolve_model
    from hf_ser.training.results import RunResult

    speakers = RunResult.load(resolve_model("ser-whisper-general") / "metrics.json").speakers
    clips = held_out_clips("ser-whisper-general", SHARED_CORPORA, 40)
    assert len(clips) == 40 == len(set(clips))
    speaker_of = {}
    for corpus in {key.split(":")[0] for key in speakers["test"]}:  # clips' paths may be resolved (links)
        ds = load_corpus(corpus, SHARED_CORPORA / corpus)
        speaker_of |= {a: f"{corpus}:{s}" for a, s in zip(ds["audio"], ds["speaker"])}
    for clip in clips:
        key = speaker_of[clip]
        assert key in speakers["test"] and key not in speakers["train"] + speakers["validation"], clip


def test_bench_level_sets_a_clip_to_one_rms_level():
    at_level, rms_dbfs = bench("bench_level", "at_level", "rms_dbfs")  # rms_dbfs: the extractor's own

    t = np.arange(16000) / 16000
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)  # RMS 0.5 / sqrt(2): -9.03 dBFS
    assert rms_dbfs(sine) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=1e-6)
    quiet = at_level(sine, -30.0)
    assert quiet.dtype == np.float32 and rms_dbfs(quiet) == pytest.approx(-30.0, abs=1e-3)
    np.testing.assert_allclose(at_level(sine * 10 ** (-24 / 20), -30.0), quiet, rtol=1e-5, atol=1e-7)  # gain gone
    assert np.abs(at_level(sine, 0.0)).max() == 1.0  # a level above full scale clips, as a recording would


def test_bench_dereverberation_keeps_a_clip_without_a_room_and_its_length():
    (dereverberate,) = bench("bench_test_time", "dereverberate")
    from hf_ser.example import synthetic_speech

    dry = synthetic_speech(1.3, 16000, seed=1)[:20001]  # not a whole number of 128-sample hops
    out = dereverberate(dry)
    assert out.shape == dry.shape and out.dtype == np.float32
    # WPE takes away only what earlier frames predict: a dry clip passes nearly unchanged (wrong STFT axes would not)
    sdr_db = 10 * np.log10(np.sum(dry.astype(np.float64) ** 2) / np.sum((dry - out).astype(np.float64) ** 2))
    assert sdr_db > 20, sdr_db
