import logging
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from hf_ser import SERFeatureExtractor
from hf_ser.augment import AugmentConfig, augment, build_transform
from hf_ser.corpora import load_corpus
from hf_ser.data import (
    SERDataCollator,
    extract_features,
    leave_one_speaker_out,
    mark_split,
    paper_protocol,
    speaker_folds,
    speaker_independent_split,
    utterance_split,
)

from .fixtures import make_crema_d, make_ravdess

NOISE_PITCH = [[{"name": "paper_noise"}], [{"name": "pitch_shift", "semitones": 2}]]


@pytest.fixture
def ravdess(tmp_path):
    return load_corpus("ravdess", make_ravdess(tmp_path / "ravdess", actors=range(1, 11)))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_SER_CACHE", str(tmp_path / "cache"))


def speakers(ds):
    return set(ds["speaker"])


def assert_partition(full, parts):
    ids = [u for p in parts for u in p["utterance_id"]]
    assert sorted(ids) == sorted(full["utterance_id"])  # every utterance on exactly one side


def test_speaker_independent_split(ravdess):
    splits = speaker_independent_split(ravdess, test_size=0.2, val_size=0.2, seed=3)
    assert [s.split for s in splits.values()] == ["train", "validation", "test"]
    assert_partition(ravdess, splits.values())
    tr, va, te = (speakers(splits[k]) for k in ("train", "validation", "test"))
    assert not (tr & va or tr & te or va & te)
    assert len(te) == 2 and len(va) == 2
    for part in (splits["validation"], splits["test"]):
        assert Counter(part["gender"])["male"] == Counter(part["gender"])["female"]  # 1 of each
    again = speaker_independent_split(ravdess, test_size=0.2, val_size=0.2, seed=3)
    assert again["test"]["utterance_id"] == splits["test"]["utterance_id"]
    with pytest.raises(ValueError, match="test_size"):
        speaker_independent_split(ravdess, test_size=0.7, val_size=0.4)


def test_speaker_folds_and_loso(ravdess):
    folds = speaker_folds(ravdess, k=5, seed=0, val_size=0.25)
    tested = [s for f in folds for s in speakers(f["test"])]
    assert sorted(tested) == sorted(speakers(ravdess))  # each speaker tested exactly once
    for fold in folds:
        assert_partition(ravdess, fold.values())
        assert not speakers(fold["train"]) & speakers(fold["test"])
        assert not speakers(fold["validation"]) & (speakers(fold["train"]) | speakers(fold["test"]))
        assert Counter(fold["test"]["gender"])["male"] == Counter(fold["test"]["gender"])["female"]
    loso = leave_one_speaker_out(ravdess)
    assert [s for s, _ in loso] == sorted(speakers(ravdess))
    for speaker, fold in loso:
        assert speakers(fold["test"]) == {speaker} and speaker not in speakers(fold["train"])
    with pytest.raises(ValueError, match="k=11"):
        speaker_folds(ravdess, k=11)


def test_utterance_split(ravdess):
    splits = utterance_split(ravdess, test_size=0.2, val_size=0.1, seed=0)
    assert_partition(ravdess, splits.values())
    assert len(splits["test"]) == 30 and len(splits["validation"]) == 15
    assert speakers(splits["train"]) & speakers(splits["test"])  # speaker-dependent by design


def test_augment_refuses_non_training(ravdess):
    splits = speaker_independent_split(ravdess)
    for name in ("validation", "test"):
        with pytest.raises(ValueError, match=f"only takes a training split, got split='{name}'"):
            augment(splits[name], NOISE_PITCH)
    with pytest.raises(ValueError, match="split=None"):
        augment(ravdess, NOISE_PITCH)


def test_augment_rows_sources_and_determinism(ravdess):
    splits = speaker_independent_split(ravdess, seed=0)
    train = augment(splits["train"], NOISE_PITCH, seed=7)
    assert train.split == "train" and len(train) == 3 * len(splits["train"])
    assert Counter(train["augmentation"]) == {
        "none": len(splits["train"]),
        "paper_noise": len(splits["train"]),
        "pitch_shift": len(splits["train"]),
    }
    sources = set(splits["train"]["utterance_id"])
    assert set(train["source_id"]) == sources  # augmented copies stay on the side of their source
    assert not set(train["source_id"]) & set(splits["test"]["utterance_id"])
    assert len(set(train["utterance_id"])) == len(train)
    first = train[0]
    original, _ = sf.read(first["audio"], dtype="float32")
    np.testing.assert_array_equal(np.asarray(first["array"], np.float32), original)
    again = augment(splits["train"], NOISE_PITCH, seed=7, num_proc=2, batch_size=3, cache_dir=None)
    for a, b in zip(train.select(range(12)), again.select(range(12))):
        assert np.asarray(a["array"], np.float32).tobytes() == np.asarray(b["array"], np.float32).tobytes()
    other = augment(splits["train"], NOISE_PITCH, seed=8)
    assert np.asarray(other[1]["array"]).tobytes() != np.asarray(train[1]["array"]).tobytes()


def test_paper_noise_follows_the_rule():
    wave = (0.5 * np.sin(np.linspace(0, 400, 8000))).astype(np.float32)
    transform = build_transform({"name": "paper_noise", "max_factor": 0.035})
    stds = []
    for seed in range(30):
        np.random.seed(seed)
        import random

        random.seed(seed)
        stds.append(np.std(transform(samples=wave, sample_rate=8000) - wave))
    assert max(stds) <= 0.035 * 0.5 * 1.1 and min(stds) >= 0
    assert np.std(stds) > 0  # the factor is drawn per clip


def test_pitch_shift_moves_the_pitch():
    rate = 16000
    t = np.arange(rate) / rate
    wave = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    shifted = build_transform({"name": "pitch_shift", "semitones": 2})(samples=wave, sample_rate=rate)
    spectrum = np.abs(np.fft.rfft(shifted * np.hanning(shifted.size)))
    peak = np.argmax(spectrum) * rate / shifted.size
    assert abs(peak - 220 * 2 ** (2 / 12)) < 3


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "reverb"}, "unknown augmentation 'reverb'"),
        ({"name": "gain", "loudness": 3}, r"unknown parameters \['loudness'\]"),
        ({"name": "paper_noise", "max_factor": 5}, "max_factor"),
        ({"name": "time_stretch", "min_rate": 2.0, "max_rate": 1.0}, "time_stretch"),
        ({"semitones": 2}, "'name'"),
    ],
)
def test_bad_augmentation_config(spec, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig.from_value([[spec]])


def test_all_transforms_build_and_run():
    wave = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    for spec in [
        {"name": "noise_snr", "snr_db": 20},
        {"name": "time_stretch", "rate": 0.8},
        {"name": "time_shift", "samples": 500},
        {"name": "gain", "gain_db": -6},
    ]:
        out = build_transform(spec)(samples=wave, sample_rate=8000)
        assert np.isfinite(out).all() and out.dtype == np.float32
    stretched = build_transform({"name": "time_stretch", "rate": 0.8})(samples=wave, sample_rate=8000)
    assert abs(stretched.size - 10000) < 200
    np.testing.assert_allclose(
        build_transform({"name": "gain", "gain_db": -6})(samples=wave, sample_rate=8000),
        wave * 10 ** (-6 / 20),
        rtol=1e-5,
    )
    shifted = build_transform({"name": "time_shift", "samples": 500})(samples=wave, sample_rate=8000)
    np.testing.assert_allclose(shifted, np.roll(wave, 500), atol=1e-6)


def test_paper_protocol_leaks_on_purpose(ravdess, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_ser.data"):
        splits = paper_protocol(ravdess, NOISE_PITCH)
    assert "leaky" in caplog.text
    assert len(splits["train"]) + len(splits["test"]) == 3 * len(ravdess)
    assert splits["validation"]["utterance_id"] == splits["test"]["utterance_id"]
    assert set(splits["train"]["source_id"]) & set(splits["test"]["source_id"])  # the leak it reproduces


def test_feature_map_matches_extractor_and_caches(tmp_path, monkeypatch):
    ds = load_corpus("crema_d", make_crema_d(tmp_path / "c"))
    fe = SERFeatureExtractor()
    feats = extract_features(ds, fe)
    assert feats.features["input_features"].shape == (None, 40)
    wave, rate = sf.read(ds[3]["audio"], dtype="float32")
    expected = fe(soxr.resample(wave, rate, 16000, quality="HQ"), return_tensors="np")["input_features"][0]
    np.testing.assert_allclose(np.asarray(feats[3]["input_features"]), expected, atol=1e-5)
    assert feats[3]["num_frames"] == expected.shape[0]

    def must_not_run(*args, **kwargs):
        raise AssertionError("feature extractor called on a cache hit")

    monkeypatch.setattr(SERFeatureExtractor, "__call__", must_not_run)
    again = extract_features(load_corpus("crema_d", tmp_path / "c"), fe)
    assert again.cache_files == feats.cache_files and len(again) == len(feats)


def test_feature_map_on_augmented_rows_uses_the_array(ravdess):
    train = augment(speaker_independent_split(ravdess)["train"], NOISE_PITCH, seed=0)
    feats = extract_features(train, SERFeatureExtractor(sampling_rate=8000), num_proc=2, batch_size=8)
    assert "array" not in feats.column_names and len(feats) == len(train)
    row = train[1]
    expected = SERFeatureExtractor(sampling_rate=8000)(np.asarray(row["array"], np.float32), return_tensors="np")
    np.testing.assert_allclose(np.asarray(feats[1]["input_features"]), expected["input_features"][0], atol=1e-5)


def test_bad_files_raise_or_are_skipped_and_listed(tmp_path, caplog):
    root = make_crema_d(tmp_path / "c")
    (root / "AudioWAV" / "1001_DFA_ANG_HI.wav").write_bytes(b"RIFF garbage")
    sf.write(root / "AudioWAV" / "1002_DFA_ANG_HI.wav", np.zeros(0, np.float32), 8000)
    sf.write(
        root / "AudioWAV" / "1003_DFA_ANG_HI.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), 8000, subtype="FLOAT"
    )
    ds = load_corpus("crema_d", root)
    with pytest.raises(ValueError, match="1001_DFA_ANG_HI.wav"):
        extract_features(ds, SERFeatureExtractor())
    with caplog.at_level(logging.WARNING, logger="hf_ser.data"):
        feats, report = extract_features(ds, SERFeatureExtractor(), on_error="skip", return_report=True)
    assert len(feats) == len(ds) - 3 and report.total_skipped == 3
    reasons = {f.split("/")[-1]: r for f, r in report.skipped["data"]}
    assert "cannot decode" in reasons["1001_DFA_ANG_HI.wav"]
    assert "zero-length" in reasons["1002_DFA_ANG_HI.wav"]
    assert "non-finite" in reasons["1003_DFA_ANG_HI.wav"]
    assert "skipped 3 files" in caplog.text
    train = mark_split(ds, "train")
    with pytest.raises(ValueError, match="1001_DFA_ANG_HI.wav"):
        augment(train, NOISE_PITCH)
    kept = augment(train, NOISE_PITCH, on_error="skip")
    assert len(kept) == 3 * (len(ds) - 3)


def test_collator_pads_and_masks():
    rows = [
        {"input_features": np.ones((5, 3), np.float32), "labels": 2},
        {"input_features": 2 * np.ones((3, 3), np.float32), "labels": 0},
    ]
    batch = SERDataCollator(padding_value=0.0)(rows)
    assert batch["input_features"].shape == (2, 5, 3)
    assert batch["attention_mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [2, 0]
    assert torch.all(batch["input_features"][1, 3:] == 0) and torch.all(batch["input_features"][1, :3] == 2)
    cropped = SERDataCollator(max_frames=4)(rows)
    assert cropped["input_features"].shape == (2, 4, 3)
