import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from transformers import pipeline

from hf_ser import SERAudioClassificationPipeline, SERFeatureExtractor, load_classifier
from hf_ser.cli import main as cli_main

from .conftest import make_model


@pytest.fixture
def classifier(model_dir):
    return load_classifier(model_dir)


def reference_scores(classifier, wave_16k):
    """Scores from the numpy path, the one input the stock pipeline already handles."""
    return {d["label"]: d["score"] for d in classifier(wave_16k, top_k=None)}


def as_dict(result):
    return {d["label"]: d["score"] for d in result}


def assert_same_scores(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        assert abs(a[key] - b[key]) <= atol, (key, a[key], b[key])


def test_numpy_top_k_none_sums_to_one(classifier, voice):
    result = classifier(voice(2.0, 16000), top_k=None)
    assert sorted(d["label"] for d in result) == sorted(["neutral", "happy", "sad", "angry"])
    assert abs(sum(d["score"] for d in result) - 1.0) < 1e-5
    assert [d["score"] for d in result] == sorted((d["score"] for d in result), reverse=True)
    assert len(classifier(voice(2.0, 16000), top_k=2)) == 2


@pytest.mark.parametrize(
    "suffix, subtype, rate",
    [(".wav", "PCM_16", 16000), (".wav", "FLOAT", 44100), (".flac", "PCM_24", 22050), (".ogg", "VORBIS", 48000)],
)
def test_file_paths_any_format_and_rate(classifier, voice, tmp_path, suffix, subtype, rate):
    wave = voice(2.0, rate)
    path = tmp_path / f"clip{suffix}"
    sf.write(path, np.stack([wave, wave], axis=1), rate, subtype=subtype)  # stereo: down-mixed
    decoded, _ = sf.read(path, dtype="float32")
    expected = reference_scores(classifier, soxr.resample(decoded.mean(axis=1), rate, 16000, quality="HQ"))
    assert_same_scores(as_dict(classifier(str(path), top_k=None)), expected)
    assert_same_scores(as_dict(classifier(path.read_bytes(), top_k=None)), expected)


def test_dict_input_at_other_rate(classifier, voice):
    wave = voice(1.5, 8000)
    expected = reference_scores(classifier, soxr.resample(wave, 8000, 16000, quality="HQ"))
    assert_same_scores(as_dict(classifier({"array": wave, "sampling_rate": 8000}, top_k=None)), expected)
    assert_same_scores(as_dict(classifier({"raw": wave, "sampling_rate": 8000}, top_k=None)), expected)
    with pytest.raises(ValueError, match="sampling_rate"):
        classifier({"array": wave})


def test_integer_pcm_and_channels_first_arrays(classifier, voice):
    """Arrays as other audio libraries hand them over: int16 PCM (scaled as soundfile reads it, not 32768 times too
    loud) and (channels, samples) as torchaudio and librosa return it (down-mixed, not read as 2 samples)."""
    import torch

    from hf_ser.models.ser.audio_ser import as_float32

    wave = voice(2.0, 16000)
    as_int = np.round(wave * 32767).astype(np.int16)
    expected = reference_scores(classifier, as_int / np.float32(32768))
    for given in (
        as_int,
        {"array": as_int, "sampling_rate": 16000},
        {"array": np.stack([as_int, as_int]), "sampling_rate": 16000},
    ):
        assert_same_scores(as_dict(classifier(given, top_k=None)), expected, atol=1e-4)
    stereo = np.stack([wave, 0.5 * wave])
    mono = reference_scores(classifier, stereo.mean(axis=0))
    for given in (
        stereo,
        stereo.T,
        torch.from_numpy(stereo),
        {"raw": torch.from_numpy(stereo), "sampling_rate": 16000},
    ):
        assert_same_scores(as_dict(classifier(given, top_k=None)), mono)
    np.testing.assert_array_equal(as_float32(np.array([0, 128, 255], np.uint8)), [-1.0, 0.0, 127 / 128])
    with pytest.raises(ValueError, match=r"dict.s audio array: expected .* got \(2, 3, 4\)"):
        classifier({"array": np.zeros((2, 3, 4)), "sampling_rate": 16000})


def test_batched_equals_single(classifier, voice):
    waves = [
        voice(s, 16000, pitch=p, seed=i)
        for i, (s, p) in enumerate([(3.0, 120), (0.5, 300), (1.7, 200), (2.2, 150), (0.9, 260)])
    ]
    singles = [as_dict(classifier(w, top_k=None)) for w in waves]
    batched = classifier(waves, top_k=None, batch_size=8)
    for single, result in zip(singles, batched):
        assert_same_scores(as_dict(result), single, atol=1e-4)
    tops = {max(s, key=s.get) for s in singles}
    assert len({round(max(s.values()), 3) for s in singles}) > 1 or len(tops) > 1  # inputs do differ


def test_unreadable_file_is_named(classifier, tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"this is not a wav file")
    with pytest.raises(ValueError, match="not_audio.wav"):
        classifier(str(bad))
    with pytest.raises(ValueError, match="missing.flac"):
        classifier(str(tmp_path / "missing.flac"))
    # libsndfile's own message named the path a second time, or for bytes an object's address ("Error opening
    # <_io.BytesIO object at 0x7f..>: ..."); its reason alone is kept
    with pytest.raises(ValueError) as raised:
        classifier(str(bad))
    assert str(raised.value) == f"{bad}: cannot decode audio (Format not recognised.)"
    with pytest.raises(ValueError) as raised:
        classifier(b"RIFF, but not audio")
    assert str(raised.value) == "<bytes>: cannot decode audio (Format not recognised.)"


def test_rows_of_a_datasets_audio_column_read_undecoded(classifier, voice, tmp_path):
    """datasets decodes an Audio column with torchcodec, which is not installed here; read with
    Audio(decode=False) its rows are {"bytes", "path"} dicts, which the pipeline refused ("a dict input needs
    sampling_rate"). They are classified as the file they hold, also through KeyDataset."""
    from datasets import Audio, Dataset
    from transformers.pipelines.pt_utils import KeyDataset

    paths = []
    for i, (rate, pitch) in enumerate([(16000, 140), (44100, 260)]):
        paths.append(str(tmp_path / f"clip{i}.flac"))
        sf.write(paths[-1], voice(1.5, rate, pitch=pitch, seed=i), rate)
    expected = [as_dict(classifier(path, top_k=None)) for path in paths]
    rows = [{"bytes": Path(paths[0]).read_bytes(), "path": "clip0.flac"}, {"bytes": None, "path": paths[1]}]
    ds = Dataset.from_dict({"audio": rows}).cast_column("audio", Audio(decode=False))
    for got, want in zip(classifier(KeyDataset(ds, "audio"), top_k=None), expected):
        assert_same_scores(as_dict(got), want)
    with pytest.raises(ValueError, match=r"<bytes of take.wav>: cannot decode audio"):
        classifier({"bytes": b"not audio", "path": "take.wav"})
    with pytest.raises(ValueError, match='needs "bytes" or "path", both were None'):
        classifier({"bytes": None, "path": None})


def test_arguments_and_inputs_transformers_answers_with_a_traceback(classifier, voice, tmp_path):
    """top_k < 0 was torch's "selected index k out of range", an empty batch an IndexError, and a folder "no such
    audio file"; each now says what was wrong (or, for the empty batch, answers with no results)."""
    wave = voice(1.0, 16000)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=f"top_k must be a whole number >= 0, or None for every label; got {bad}"):
            classifier(wave, top_k=bad)
    assert classifier(wave, top_k=0) == [] and len(classifier(wave, top_k=99)) == len(classifier(wave, top_k=None))
    assert classifier([]) == []
    with pytest.raises(ValueError, match="a folder, not an audio file"):
        classifier(str(tmp_path))


def test_cli_predict(model_dir, speech, tmp_path, capsys):
    paths = []
    for i, rate in enumerate([16000, 44100]):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], speech(1.0, rate, seed=i), rate)
    assert cli_main(["predict", *map(str, paths), "--model", str(model_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    # the CLI answers on the CPU unless told otherwise; transformers' own pipeline would take a GPU where there is one
    clf = pipeline(
        "audio-classification", model=str(model_dir), pipeline_class=SERAudioClassificationPipeline, device="cpu"
    )
    for path in paths:
        assert_same_scores(as_dict(printed[str(path)]["scores"]), as_dict(clf(str(path), top_k=None)))
    assert cli_main(["predict", str(paths[0]), "--model", str(model_dir), "--top-k", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{paths[0]}: ") and line.count(",") == 0
    assert cli_main(["predict", str(tmp_path / "nope.wav"), "--model", str(model_dir)]) == 1
    assert "nope.wav" in capsys.readouterr().err


def test_cli_predict_checks_its_arguments_before_the_run(model_dir, speech, tmp_path, capsys, monkeypatch):
    """--top-k -2 printed all labels but the last two and 0 all of them, --batch-size 0 ran clip by clip,
    --format without --segments was ignored, an --output in a missing folder failed after the run (the segments
    output after every timeline was computed), and --segments --output x.csv wrote JSON into it."""
    import hf_ser.inference

    clip = tmp_path / "c.wav"
    sf.write(clip, speech(1.5, 16000, seed=0), 16000)
    base = ["predict", str(clip), "--model", str(model_dir)]
    for extra, message in [
        (["--top-k", "-2"], "argument --top-k: expected a whole number >= 1, got -2"),
        (["--top-k", "0"], "argument --top-k: expected a whole number >= 1, got 0"),
        (["--batch-size", "0"], "argument --batch-size: expected a whole number >= 1, got 0"),
        (["--workers", "two"], "argument --workers: expected a whole number >= 1, got 'two'"),
        (["--uncertain-below", "1.5"], r"argument --uncertain-below: expected a score in \[0, 1\), got 1.5"),
        (["--gpus-per-actor", "-1"], "argument --gpus-per-actor: expected a finite number >= 0, got -1"),
        (["--gpus-per-actor", "inf"], "argument --gpus-per-actor: expected a finite number >= 0, got inf"),
    ]:
        with pytest.raises(SystemExit) as exited:
            cli_main(base + extra)
        assert exited.value.code == 2 and re.search(message, capsys.readouterr().err), extra
    for command, message in [  # --per-class -1 fine-tuned on all clips but the last of each label
        (["finetune", str(tmp_path), "--per-class", "-1"], "argument --per-class: expected a whole number >= 1"),
        (["evaluate", "--config", "c.yaml", "--data-dir", "d", "--folds", "1"], "argument --folds: expected a whole"),
        (["evaluate", "--config", "c.yaml", "--data-dir", "d", "--only-folds", "0,a"], "such as 0,1, got '0,a'"),
        (["results", "run", "--only-folds", "1,1"], "argument --only-folds: expected distinct fold indices"),
        (["push", "--run", "r", "--repo-id", "my model", "--dry-run"], "argument --repo-id: Repo id must use"),
        (["card", "--run", "r", "--repo-id", "a/b/c"], "argument --repo-id: Repo id must be in the form"),
        (["demo", "--port", "99999"], "argument --port: expected a whole number >= 1 and <= 65535, got 99999"),
    ]:
        with pytest.raises(SystemExit):
            cli_main(command)
        assert message in capsys.readouterr().err
    monkeypatch.setattr(hf_ser.inference, "load_classifier", lambda *a, **k: pytest.fail("a model was loaded"))
    assert cli_main([*base, "--format", "csv"]) == 2
    assert "--format is the --segments output format" in capsys.readouterr().err
    assert cli_main([*base, "--segments", "--top-k", "1"]) == 2  # was ignored
    assert "--top-k trims printed rows" in capsys.readouterr().err
    for extra, message in [  # each was ignored: the float model answered, the run stayed local on the CPU
        (["--int8"], "--int8 is the ONNX export's quantised model: add --backend onnx"),
        (["--gpus-per-actor", "1", "--actors", "2"], "--actors, --gpus-per-actor: for --engine ray (this run is local"),
        (["--engine", "ray", "--output", "o.jsonl", "--device", "cuda"], "--device is for local runs; Ray actors get"),
    ]:
        assert cli_main(base + extra) == 2
        assert message in capsys.readouterr().err, extra
    assert cli_main([*base, "--output", str(tmp_path / "rows.txt")]) == 2
    assert "--output must end in .csv or .jsonl" in capsys.readouterr().err
    assert cli_main(["example", "--output-dir", str(clip)]) == 2  # the file system's refusal: was a traceback
    assert f"File exists: '{clip}'" in capsys.readouterr().err
    (tmp_path / "taken.csv").mkdir()  # both were IsADirectoryError tracebacks once every row was computed
    assert cli_main([*base, "--output", str(tmp_path / "taken.csv")]) == 2
    assert "taken.csv is a folder; name a file to write the rows to" in capsys.readouterr().err
    assert cli_main([*base, "--segments", "--output", str(tmp_path)]) == 2
    assert "is a folder; name a file to write the timelines to" in capsys.readouterr().err
    monkeypatch.undo()
    rows = tmp_path / "new" / "deeper" / "rows.csv"
    assert cli_main([*base, "--output", str(rows)]) == 0
    assert rows.read_text().startswith("path,label,score,seconds,error,scores,reason\n")
    timeline = tmp_path / "timelines" / "t.csv"
    assert cli_main([*base, "--segments", "--output", str(timeline)]) == 0
    assert timeline.read_text().startswith("path,start,end,label,score,emotion,reason,error\n")  # CSV, as named
    lines = tmp_path / "t.jsonl"  # it held one indented JSON document
    assert cli_main([*base, "--segments", "--output", str(lines)]) == 0
    (row,) = [json.loads(line) for line in lines.read_text().splitlines()]
    assert row["path"] == base[1] and row["segments"]
    for extra, message in [  # CSV was written into t.json; --format was ignored by a Ray run
        (["--format", "csv", "--output", str(tmp_path / "t.json")], "--format csv but --output"),
        (["--engine", "ray", "--format", "csv", "--output", str(lines)], "--format is for local timelines"),
    ]:
        assert cli_main([*base, "--segments", *extra]) == 2
        assert message in capsys.readouterr().err, extra
    assert not (tmp_path / "t.json").exists()


def test_cli_timeline_csv_keeps_uncertain_answers_and_failed_files(model_dir, speech, tmp_path):
    """The timeline's CSV left an "uncertain" segment's score empty and dropped its reason and best guess, and gave a
    file that failed no row at all (only stderr named it)."""
    import csv

    from hf_ser.data.corruptions import TelephoneBand

    phone = tmp_path / "phone.wav"
    sf.write(phone, TelephoneBand(p=1.0)(speech(3.0, 16000, seed=5), sample_rate=16000), 16000)
    out = tmp_path / "t.csv"
    args = ["predict", str(phone), str(tmp_path / "gone.wav"), "--model", str(model_dir), "--segments"]
    assert cli_main([*args, "--output", str(out)]) == 1
    rows = list(csv.DictReader(out.open()))
    assert [r["error"] for r in rows if r["path"].endswith("gone.wav")] == ["no such file or folder"]
    unsure = [r for r in rows if r["label"] == "uncertain"]
    assert unsure and all(
        r["reason"].startswith("band-limited") and r["emotion"] and float(r["score"]) > 0 for r in unsure
    )


def test_cli_example_runs_end_to_end(tmp_path, capsys):
    assert cli_main(["example", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "parameters" in out and (tmp_path / "untrained-model" / "model.safetensors").is_file()


def test_no_torchaudio_or_ffmpeg_needed(classifier, voice, tmp_path, monkeypatch):
    """Our pipeline never calls ffmpeg nor torchaudio, whether or not the machine has them."""
    import transformers.pipelines.audio_classification as stock

    def forbidden(*args, **kwargs):
        raise AssertionError("the hf-ser pipeline called ffmpeg")

    monkeypatch.setattr(stock, "ffmpeg_read", forbidden)
    monkeypatch.setattr(stock.subprocess, "Popen", forbidden)
    monkeypatch.setattr(stock, "is_torchaudio_available", lambda: False)
    path = tmp_path / "clip.flac"
    sf.write(path, voice(1.0, 44100), 44100)
    for inputs in (str(path), path.read_bytes(), {"array": voice(1.0, 8000), "sampling_rate": 8000}):
        assert len(classifier(inputs, top_k=None)) == 4
    monkeypatch.undo()
    probe = "import importlib.util; print(importlib.util.find_spec('torchaudio'))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None"]  # never installed: with CPU torch it would break transformers' pipeline


def test_extractor_rate_mismatch_from_pipeline_is_resampled_not_rejected(classifier, voice):
    # numpy input is documented as "at the extractor's rate"; the dict path is how other rates come in.
    assert SERFeatureExtractor().sampling_rate == 16000
    wave = voice(1.0, 44100)
    expected = reference_scores(classifier, soxr.resample(wave, 44100, 16000, quality="HQ"))
    assert_same_scores(as_dict(classifier({"array": wave, "sampling_rate": 44100}, top_k=None)), expected)


def test_other_models_keep_transformers_own_pipeline(model_dir):
    """Importing hf_ser changes no other model's pipeline; ours refuses models that are not hf-ser's."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification
    from transformers.pipelines import SUPPORTED_TASKS
    from transformers.pipelines.audio_classification import AudioClassificationPipeline

    import hf_ser  # noqa: F401

    tiny = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 4),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        num_labels=2,
    )
    w2v = pipeline(
        "audio-classification",
        model=Wav2Vec2ForSequenceClassification(tiny),
        feature_extractor=Wav2Vec2FeatureExtractor(),
    )
    assert type(w2v) is AudioClassificationPipeline
    impl = SUPPORTED_TASKS["audio-classification"]["impl"]  # transformers 5 stores a dotted name
    assert impl in (
        AudioClassificationPipeline,
        "transformers.pipelines.audio_classification.AudioClassificationPipeline",
    )
    assert len(w2v(np.zeros(16000, np.float32), top_k=None)) == 2
    with pytest.raises(ValueError, match="serves hf-ser models"):
        SERAudioClassificationPipeline(
            model=Wav2Vec2ForSequenceClassification(tiny), feature_extractor=Wav2Vec2FeatureExtractor()
        )


def test_predict_defaults_to_the_general_checkpoint(tmp_path, speech, monkeypatch, capsys):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    models = [
        ("ser-emodb", ["anger", "boredom"]),
        ("ser-general", ["neutral", "calm", "happy"]),
        ("ser-ravdess", ["neutral", "calm", "sad", "angry"]),
    ]
    for name, labels in models:
        make_model(tmp_path / name, labels=labels).rename(bundle / name)
    monkeypatch.setenv("HF_SER_CHECKPOINTS", str(bundle))
    sf.write(tmp_path / "a.wav", speech(1.0, 16000), 16000)
    assert cli_main(["predict", str(tmp_path / "a.wav"), "--json"]) == 0
    labels = {d["label"] for d in json.loads(capsys.readouterr().out)[str(tmp_path / "a.wav")]["scores"]}
    assert labels == {"neutral", "calm", "happy"}
    assert cli_main(["predict", str(tmp_path / "a.wav"), "--model", "ser-genral"]) == 2  # a typo
    assert "ser-genral: not a model folder" in (err := capsys.readouterr().err) and "did you mean ser-general?" in err
    monkeypatch.setenv("HF_SER_CHECKPOINTS", str(tmp_path / "empty"))
    assert cli_main(["predict", str(tmp_path / "a.wav")]) == 2
    assert "no bundled checkpoint" in capsys.readouterr().err
