import logging
import os
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from hf_ser import SERFeatureExtractor
from hf_ser.data import (
    SERDataCollator,
    extract_features,
    leave_one_speaker_out,
    mark_split,
    speaker_folds,
    speaker_independent_split,
    subset,
    utterance_split,
)
from hf_ser.data.augment import AugmentConfig, augment, build_transform
from hf_ser.data.corpora import load_corpus

from .fixtures import make_crema_d, make_ravdess

NOISE_PITCH = [
    [{"name": "PeakRelativeGaussianNoise"}],
    [{"name": "PitchShift", "min_semitones": 2, "max_semitones": 2, "p": 1.0}],
]


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


def test_a_split_prints_no_progress_bar_and_keeps_the_callers_setting(ravdess, capsys):
    """Each split printed datasets' "Flattening the indices" bar: 15 lines for one 5-fold evaluation."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    enable_progress_bars()
    assert len(subset(ravdess, list(range(40)), "train")) == 40
    assert "Flattening" not in capsys.readouterr().err and not are_progress_bars_disabled()
    disable_progress_bars()
    subset(ravdess, [0, 1], "test")
    assert are_progress_bars_disabled()
    enable_progress_bars()


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
        "PeakRelativeGaussianNoise": len(splits["train"]),
        "PitchShift": len(splits["train"]),
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


def test_babble_copies_mix_other_clips_of_the_training_speakers_at_the_drawn_snr(ravdess):
    from hf_ser.data.corruptions import babble_sources

    train = speaker_independent_split(ravdess, seed=0)["train"]
    babble = [[{"name": "AddNoise", "kind": "babble", "snr_db": 5, "max_snr_db": 20, "talkers": 3, "seed": None}]]
    out = augment(train, babble, seed=3, sampling_rate=16000, cache_dir=None)
    copies = [r for r in out if r["augmentation"] == "AddNoise"]
    originals = {r["utterance_id"]: np.asarray(r["array"], np.float32) for r in out if r["augmentation"] == "none"}
    snrs = []
    for row in copies:
        clean = originals[row["source_id"]]
        noise = np.asarray(row["array"], np.float32) - clean
        snrs.append(10 * np.log10(np.mean(clean**2) / np.mean(noise**2)))
    assert len(copies) == len(train) and 5 - 0.05 <= min(snrs) < max(snrs) <= 20 + 0.05  # drawn per clip
    # the same seed gives the same audio with two worker processes; the test suite's babble clips are not used
    again = augment(train, babble, seed=3, sampling_rate=16000, num_proc=2, batch_size=3, cache_dir=None)
    assert np.asarray(again[1]["array"]).tobytes() == np.asarray(out[1]["array"]).tobytes()
    first, last = babble_sources(train, 16000), babble_sources(train, 16000, last=True)
    assert not any(np.array_equal(a, b) for a in first for b in last)
    with pytest.raises(ValueError, match="needs a sampling_rate"):
        augment(train, babble, seed=3)


def test_paper_noise_follows_the_rule():
    wave = (0.5 * np.sin(np.linspace(0, 400, 8000))).astype(np.float32)
    transform = build_transform({"name": "PeakRelativeGaussianNoise", "max_factor": 0.035})
    stds, factors = [], []
    for seed in range(30):
        np.random.seed(seed)
        import random

        random.seed(seed)
        stds.append(np.std(transform(samples=wave, sample_rate=8000) - wave))
        factors.append(transform.parameters["factor"])
    # noise std = factor * peak (0.5), the factor drawn per clip from U(0, 0.035)
    np.testing.assert_allclose(stds, 0.5 * np.asarray(factors), rtol=0.05)
    assert max(factors) <= 0.035 and min(factors) < 0.01 < 0.025 < max(factors)


def test_pitch_shift_moves_the_pitch():
    rate = 16000
    t = np.arange(rate) / rate
    wave = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    spec = {"name": "PitchShift", "min_semitones": 2, "max_semitones": 2, "p": 1.0}
    shifted = build_transform(spec)(samples=wave, sample_rate=rate)
    spectrum = np.abs(np.fft.rfft(shifted * np.hanning(shifted.size)))
    peak = np.argmax(spectrum) * rate / shifted.size
    assert abs(peak - 220 * 2 ** (2 / 12)) < 3


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "reverb"}, "unknown augmentation 'reverb'"),
        ({"name": "Gain", "loudness": 3}, "augmentation 'Gain': invalid parameters.*loudness"),
        ({"name": "PeakRelativeGaussianNoise", "max_factor": 5}, "max_factor"),
        ({"name": "TimeStretch", "min_rate": 2.0, "max_rate": 1.0}, "TimeStretch"),
        ({"semitones": 2}, "'name'"),
    ],
)
def test_bad_augmentation_config(spec, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig.from_value([[spec]])


def test_all_transforms_build_and_run():
    wave = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    # Any audiomentations waveform transform, by class name, with its own documented parameter names.
    for spec in [
        {"name": "AddGaussianSNR", "min_snr_db": 20, "max_snr_db": 20, "p": 1.0},
        {"name": "SevenBandParametricEQ", "p": 1.0},
        {"name": "LowPassFilter", "min_cutoff_freq": 1000, "max_cutoff_freq": 2000, "p": 1.0},
    ]:
        out = build_transform(spec)(samples=wave, sample_rate=8000)
        assert np.isfinite(out).all() and out.dtype == np.float32 and not np.allclose(out, wave)
    stretch = {"name": "TimeStretch", "min_rate": 0.8, "max_rate": 0.8, "leave_length_unchanged": False, "p": 1.0}
    stretched = build_transform(stretch)(samples=wave, sample_rate=8000)
    assert abs(stretched.size - 10000) < 200
    np.testing.assert_allclose(
        build_transform({"name": "Gain", "min_gain_db": -6, "max_gain_db": -6, "p": 1.0})(
            samples=wave, sample_rate=8000
        ),
        wave * 10 ** (-6 / 20),
        rtol=1e-5,
    )
    shift = {"name": "Shift", "min_shift": 500, "max_shift": 500, "shift_unit": "samples", "fade_duration": 0, "p": 1.0}
    shifted = build_transform(shift)(samples=wave, sample_rate=8000)
    np.testing.assert_allclose(shifted, np.roll(wave, 500), atol=1e-6)
    # audiomentations' own default p=0.5 is kept: over many clips about half are left unchanged.
    gain = build_transform({"name": "Gain", "min_gain_db": -6, "max_gain_db": -6})
    unchanged = sum(np.array_equal(gain(samples=wave, sample_rate=8000), wave) for _ in range(200))
    assert 70 < unchanged < 130


def test_paper_protocol_leaks_on_purpose(ravdess, caplog):
    from hf_ser.training.protocols import AugmentSettings, ProtocolSettings, get_protocol

    with caplog.at_level(logging.WARNING, logger="hf_ser.training"):
        settings = ProtocolSettings(test_size=0.25, seed=3)
        [(_, splits)] = get_protocol("paper").folds(ravdess, settings, AugmentSettings(NOISE_PITCH, 0, 8000, None))
    assert "leaky" in caplog.text
    assert len(splits["test"]) == round(0.25 * 3 * len(ravdess))  # the config's test_size is honoured
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
    for cache_file in feats.cache_files:
        os.utime(cache_file["filename"], (1_000, 1_000))  # written long ago
    again = extract_features(load_corpus("crema_d", tmp_path / "c"), fe)
    assert again.cache_files == feats.cache_files and len(again) == len(feats)
    # the hit is a use, so `hf-ser cache prune` (least recently used first) keeps it over older entries
    assert all(os.stat(f["filename"]).st_mtime > 1_000 for f in again.cache_files)


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


def test_in_memory_training_items_crop_and_mask():
    from datasets import Array2D, ClassLabel, Dataset, Features

    from hf_ser.data import InMemoryFeatures
    from hf_ser.data.collate import ItemAugmentation

    frames = np.arange(50 * 6, dtype=np.float32).reshape(50, 6)
    ds = Dataset.from_dict(
        {"input_features": [frames, frames[:10]], "emotion": [1, 0]},
        features=Features({"input_features": Array2D((None, 6), "float32"), "emotion": ClassLabel(names=["a", "b"])}),
    )
    full = InMemoryFeatures(ds)
    assert torch.equal(full[0]["input_features"], torch.from_numpy(frames)) and full[0]["labels"] == 1
    crops = InMemoryFeatures(ds, augmentation=ItemAugmentation(max_train_frames=20))
    torch.manual_seed(0)
    starts = set()
    for _ in range(20):
        item = crops[0]["input_features"]
        assert item.shape == (20, 6)
        start = int(item[0, 0]) // 6
        torch.testing.assert_close(item, torch.from_numpy(frames[start : start + 20]))  # a contiguous window
        starts.add(start)
    assert len(starts) > 5  # random windows
    assert crops[1]["input_features"].shape == (10, 6)  # shorter items are kept whole
    masks = ItemAugmentation(time_masks=2, time_mask_width=5, feature_masks=1, feature_mask_width=2)
    masked = InMemoryFeatures(ds, augmentation=masks)
    torch.manual_seed(1)
    item = masked[0]["input_features"]
    mean = torch.from_numpy(frames).mean(dim=0)
    replaced = (item == mean).all(dim=1).sum() + (item == mean).all(dim=0).sum()
    assert replaced > 0 and not torch.equal(item, full[0]["input_features"])
    assert torch.equal(full[0]["input_features"], torch.from_numpy(frames))  # the stored item is untouched


def test_frequency_warp_moves_content_along_the_feature_axis():
    from hf_ser.data.collate import warp_feature_axis

    ramp = torch.arange(8, dtype=torch.float32).repeat(3, 1)  # (3 frames, 8 bins), value = bin index
    assert torch.equal(warp_feature_axis(ramp, 1.0), ramp)
    # factor 2: bin j reads position j / 2, so the ramp is halved (linear interpolation)
    assert torch.allclose(warp_feature_axis(ramp, 2.0)[0], torch.arange(8) / 2.0)
    # factor 0.5: bin j reads 2 j, clamped at the last bin
    assert torch.allclose(warp_feature_axis(ramp, 0.5)[0], torch.tensor([0.0, 2, 4, 6, 7, 7, 7, 7]))
    peak = torch.zeros(1, 40)
    peak[0, 20] = 1.0
    assert int(warp_feature_axis(peak, 1.1).argmax()) == 22  # 22 / 1.1 = 20: a formant moved up


def test_frequency_warp_is_validated():
    from datasets import Array2D, ClassLabel, Dataset, Features

    from hf_ser.data.collate import InMemoryFeatures, ItemAugmentation

    features = Features({"input_features": Array2D((None, 4), "float32"), "emotion": ClassLabel(num_classes=2)})
    rows = Dataset.from_dict({"input_features": [np.ones((5, 4), np.float32)], "emotion": [1]}, features)
    with pytest.raises(ValueError, match="frequency_warp\n  Input should be less than 1"):
        ItemAugmentation(frequency_warp=1.5)
    item = InMemoryFeatures(rows, augmentation=ItemAugmentation(frequency_warp=0.2))[0]
    # a constant spectrum stays constant under any warp
    assert torch.allclose(item["input_features"], torch.ones(5, 4))


def test_random_eq_is_a_smooth_zero_mean_curve_within_its_size():
    from hf_ser.data.collate import InMemoryFeatures, ItemAugmentation, random_eq_curve

    torch.manual_seed(0)
    for _ in range(20):
        curve = random_eq_curve(64, 6.0)
        assert curve.shape == (64,) and curve.abs().max() <= 6.0 + 1e-5 and abs(float(curve.mean())) < 1e-4
        assert float((curve[1:] - curve[:-1]).abs().max()) < 6.0 * 4 * torch.pi / 63 * 2  # smooth: small steps
    from datasets import Array2D, ClassLabel, Dataset, Features

    features = Features({"input_features": Array2D((None, 8), "float32"), "emotion": ClassLabel(num_classes=2)})
    frames = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    rows = Dataset.from_dict({"input_features": [frames], "emotion": [0]}, features)
    out = InMemoryFeatures(rows, augmentation=ItemAugmentation(random_eq_db=3.0))[0]["input_features"]
    offset = out - torch.from_numpy(frames)
    assert torch.allclose(offset, offset[0].expand_as(offset), atol=1e-5)  # one curve for every frame
    with pytest.raises(ValueError, match="random_eq_db\n  Input should be greater than or equal to 0"):
        ItemAugmentation(random_eq_db=-1.0)


def test_cache_prune_removes_least_recently_used_entries_whole(tmp_path, capsys):
    import os

    from hf_ser.cli import main as cli_main
    from hf_ser.data.cache_usage import cache_usage, prune_cache

    def write(relative: str, size: int, used: float):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (used, used))

    write("encoder_states/old.npy", 100, 1_000)
    write("encoder_states/statistics/mid.npz", 10, 2_000)
    write("features/features-abc_00000_of_00002.arrow", 50, 3_000)  # one entry of two shards
    write("features/features-abc_00001_of_00002.arrow", 50, 1_500)
    write("augment/augment-new.arrow", 30, 4_000)
    write("extracted/fp1/000000-a.wav", 20, 500)  # one dataset's written-out audio: one entry, last used 5000
    write("extracted/fp1/000001-b.flac", 20, 5_000)
    usage = {u.kind: (u.entries, u.bytes) for u in cache_usage(tmp_path)}
    assert usage == {"encoder_states": (2, 110), "features": (1, 100), "augment": (1, 30), "extracted": (1, 40)}
    dry = prune_cache(190, tmp_path, dry_run=True)
    assert (dry.removed, dry.freed, dry.remaining) == (1, 100, 180) and (tmp_path / "encoder_states/old.npy").exists()
    report = prune_cache(90, tmp_path)  # old.npy (1000), mid.npz (2000), then both shards (last used 3000)
    assert (report.removed, report.freed, report.remaining) == (3, 210, 70)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "000000-a.wav",
        "000001-b.flac",
        "augment-new.arrow",
    ]
    assert cli_main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    info = capsys.readouterr().out
    assert "augment" in info
    assert cli_main(["cache", "--cache-dir", str(tmp_path)]) == 0  # `hf-ser cache` alone shows it (it was an error)
    assert capsys.readouterr().out == info
    assert cli_main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 2
    assert "prune needs --max-gb" in capsys.readouterr().err
    assert cli_main(["cache", "prune", "--max-gb", "0", "--cache-dir", str(tmp_path)]) == 0
    assert "removed 2 entries" in capsys.readouterr().out and not list(tmp_path.rglob("*.arrow"))
    assert not (tmp_path / "extracted" / "fp1").exists()  # the dataset's folder goes with its files
    (tmp_path / "a-file").write_text("")  # it was shown as an empty cache
    assert cli_main(["cache", "info", "--cache-dir", str(tmp_path / "a-file")]) == 2
    assert "a-file: a file, not a cache folder" in capsys.readouterr().err
    assert cli_main(["cache", "prune", "--max-gb", "1", "--cache-dir", str(tmp_path / "none")]) == 0
    assert "none: no cache yet" in capsys.readouterr().out and not (tmp_path / "none").exists()
    for size in ("inf", "nan"):  # they were OverflowError and ValueError tracebacks
        with pytest.raises(SystemExit) as exited:
            cli_main(["cache", "prune", "--max-gb", size, "--cache-dir", str(tmp_path)])
        assert exited.value.code == 2
        assert f"argument --max-gb: expected a finite number >= 0, got {size}" in capsys.readouterr().err
    for args, error in [  # both were ignored
        (["info", "--max-gb", "3"], "--max-gb and --dry-run are options of `hf-ser cache prune`"),
        (["info", "--dry-run"], "--max-gb and --dry-run are options of `hf-ser cache prune`"),
    ]:
        assert cli_main(["cache", *args, "--cache-dir", str(tmp_path)]) == 2, args
        assert error in capsys.readouterr().err, args
