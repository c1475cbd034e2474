"""Speaker-adaptive mode: the extractor's adaptation equals training's per-speaker standardisation, models
trained that way refuse unadapted audio, and predict --adapt-on works on both backends."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import Array2D, Dataset, Features, Value

from hf_ser import SERFeatureExtractor, load_classifier
from hf_ser.cli import main as cli_main
from hf_ser.data.features import standardize_per_group


@pytest.fixture
def speaker(tmp_path, speech):
    folder = tmp_path / "speaker"
    folder.mkdir()
    for i, (seconds, pitch) in enumerate([(1.2, 110), (2.0, 140), (1.6, 125)]):
        sf.write(folder / f"clip{i}.wav", speech(seconds, 16000, pitch=pitch, seed=10 + i), 16000)
    (folder / "broken.wav").write_bytes(b"not audio")
    return folder


@pytest.fixture
def adaptive_dir(model_dir, tmp_path):
    folder = shutil.copytree(model_dir, tmp_path / "adaptive")
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**settings, "speaker_adaptive": True}))
    return folder


def test_adapt_equals_the_training_standardisation(voice):
    fe = SERFeatureExtractor(feature_type="log_mel", mean_normalization="level")
    waves = [voice(s, 16000, pitch=p, seed=i) for i, (s, p) in enumerate([(1.0, 120), (1.7, 180), (0.8, 150)])]
    plain = [fe(w)["input_features"][0] for w in waves]
    rows = Dataset.from_dict(
        {"input_features": plain, "speaker": ["s1"] * 3},
        Features({"input_features": Array2D((None, 64), "float32"), "speaker": Value("string")}),
    )
    trained = standardize_per_group(rows, "input_features").with_format("numpy")["input_features"]
    adapted = SERFeatureExtractor(feature_type="log_mel", mean_normalization="level", speaker_adaptive=True).adapt(
        waves
    )
    for wave, expected in zip(waves, trained):
        np.testing.assert_allclose(adapted(wave)["input_features"][0], expected, atol=1e-4)
    frames = np.concatenate([adapted(w)["input_features"][0] for w in waves])
    np.testing.assert_allclose(frames.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(frames.std(axis=0), 1, atol=1e-3)


def test_an_adaptive_model_refuses_unadapted_audio_and_adapts_from_a_folder(adaptive_dir, model_dir, speaker, voice):
    wave = voice(1.5, 16000, pitch=130, seed=99)
    with pytest.raises(ValueError, match="trained on speaker-adapted features: adapt"):
        load_classifier(adaptive_dir)(wave)
    classifier = load_classifier(adaptive_dir, adapt_on=speaker)  # broken.wav is skipped and reported
    fe = classifier.feature_extractor
    assert fe.speaker_mean is not None and len(fe.speaker_std) == fe.feature_size
    scores = {d["label"]: d["score"] for d in classifier(wave, top_k=None)}
    with torch.no_grad():
        logits = classifier.model(**fe(wave, return_tensors="pt")).logits[0]
    expected = dict(zip([classifier.model.config.id2label[i] for i in range(len(logits))], logits.softmax(-1).tolist()))
    assert all(abs(scores[k] - v) < 1e-5 for k, v in expected.items())
    with pytest.raises(ValueError, match="not speaker-adaptive"):
        load_classifier(model_dir, adapt_on=speaker)
    with pytest.raises(ValueError, match="no usable clip of the speaker"):
        load_classifier(adaptive_dir, adapt_on=speaker / "broken.wav")
    with pytest.raises(ValueError, match="adapt_on is empty: give one speaker's clips"):  # "in []: []"
        load_classifier(adaptive_dir, adapt_on=[])


def test_adapting_on_fewer_clips_than_measured_worthwhile_warns(adaptive_dir, speaker, speech, caplog):
    """1-4 clips adapted no better than the speaker-independent model (bench_adaptation.py); that was silent."""
    import logging

    from hf_ser.adaptation import MIN_CLIPS

    with caplog.at_level(logging.WARNING, logger="hf_ser.adaptation"):
        load_classifier(adaptive_dir, adapt_on=speaker)  # 3 usable clips
    assert f"only 3 usable clip(s) of the speaker; with fewer than {MIN_CLIPS}" in caplog.text
    for i in range(MIN_CLIPS - 3):
        sf.write(speaker / f"more{i}.wav", speech(1.5, 16000, pitch=115 + 5 * i, seed=40 + i), 16000)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hf_ser.adaptation"):
        load_classifier(adaptive_dir, adapt_on=speaker)
    assert "usable clip(s)" not in caplog.text and "broken.wav" in caplog.text  # the skipped file is still named


def test_predict_adapt_on_with_torch_and_onnx(adaptive_dir, speaker, tmp_path, speech, capsys):
    clip = tmp_path / "query.wav"
    sf.write(clip, speech(1.4, 16000, pitch=150, seed=5), 16000)
    assert cli_main(["predict", str(clip), "--model", str(adaptive_dir), "--json"]) == 2  # a usage error
    assert "adapt the feature extractor to the speaker first" in capsys.readouterr().err
    assert cli_main(["predict", str(clip), "--model", str(adaptive_dir), "--adapt-on", str(speaker), "--json"]) == 0
    torch_scores = json.loads(capsys.readouterr().out)[str(clip)]["scores"]
    onnx_dir = tmp_path / "onnx"
    assert cli_main(["export", "--onnx", str(onnx_dir), "--model", str(adaptive_dir)]) == 0
    capsys.readouterr()
    args = ["predict", str(clip), "--backend", "onnx", "--model", str(onnx_dir), "--adapt-on", str(speaker), "--json"]
    assert cli_main(args) == 0
    onnx_scores = json.loads(capsys.readouterr().out)[str(clip)]["scores"]
    assert [d["label"] for d in onnx_scores] == [d["label"] for d in torch_scores]
    assert all(abs(a["score"] - b["score"]) < 1e-3 for a, b in zip(onnx_scores, torch_scores))


def test_the_space_leaves_out_speaker_adaptive_checkpoints(model_dir, adaptive_dir, tmp_path, monkeypatch):
    from hf_ser.demo import available_models

    bundle = tmp_path / "bundle"
    shutil.copytree(model_dir, bundle / "ser-general")
    shutil.copytree(adaptive_dir, bundle / "ser-general-adaptive")
    states = shutil.copytree(model_dir, bundle / "ser-states-adaptive")  # adaptive on its encoder states
    config = json.loads((states / "config.json").read_text())
    (states / "config.json").write_text(json.dumps({**config, "adaptive_states": True}))
    monkeypatch.setenv("HF_SER_CHECKPOINTS", str(bundle))
    monkeypatch.delenv("HF_SER_MODEL", raising=False)
    assert list(available_models()) == ["ser-general"]
    with pytest.raises(ValueError, match="no usable clip of the speaker"):  # still loadable by name, adapted
        load_classifier("ser-general-adaptive", adapt_on=tmp_path / "missing-folder")


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize("name, at_least", [("ser-general-adaptive", 0.3), ("ser-whisper-general-adaptive", 0.5)])
def test_bundled_adaptive_models_answer_a_held_out_speaker_once_adapted_to_them(name, at_least):
    """A bundled speaker-adaptive model refuses a held-out RAVDESS actor's clip, then, adapted on that actor's
    unlabelled clips, labels them well above chance (1 in 7). Bounds sit under what each shipped model does."""
    from hf_ser.data.corpora import CORPORA, unified_label
    from hf_ser.inference import bundled_dir, resolve_model

    from .conftest import SHARED_CORPORA

    try:
        resolve_model(name)
    except ValueError as err:
        pytest.skip(str(err))
    metrics = json.loads((bundled_dir() / name / "metrics.json").read_text())
    actor = next(s.split(":")[1] for s in metrics["speakers"]["test"] if s.startswith("ravdess:"))
    files = sorted((SHARED_CORPORA / "ravdess" / f"Actor_{actor}").glob("*.flac"))
    assert len(files) == 60, f"Actor_{actor}: {len(files)} clips"
    with pytest.raises(ValueError, match="adapt"):
        load_classifier(name)(str(files[0]))
    classifier = load_classifier(name, adapt_on=files)
    sample = files[::3]
    predicted = [out[0]["label"] for out in classifier([str(f) for f in sample], top_k=1)]
    ravdess = CORPORA["ravdess"]()  # its labels as the general models train on them (calm merged into neutral)
    truth = [unified_label("ravdess", ravdess.parse(f)["emotion"], merge_calm=True) for f in sample]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth)]))
    assert accuracy >= at_least, f"{name} on Actor_{actor}: {accuracy:.2f}"
