"""Fine-tuning on a user's own clips: the three input formats, label remapping, split modes, bad rows."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from hf_ser.cli import main as cli_main
from hf_ser.finetune import adapt_head, load_user_data, unified_name

from .conftest import make_model

LABELS = {"anger": 140, "joy": 220, "sadness": 110, "sarcasm": 300}  # label -> pitch of its synthetic clips


@pytest.fixture
def audiofolder(tmp_path, voice):
    root = tmp_path / "clips"
    rows = []
    for label, pitch in LABELS.items():
        (root / label).mkdir(parents=True)
        for i in range(6):
            name = f"{label}/{label}_{i}.wav"
            sf.write(root / name, voice(1.0, 16000, pitch=pitch + 5 * i, seed=i), 16000)
            rows.append([name, f"spk{i % 3}"])
    with open(root / "metadata.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["file_name", "speaker"], *rows])
    return root


def test_unified_names():
    assert [unified_name(x) for x in ["anger", "Happiness", "joy", "ps", "sarcasm"]] == [
        "angry",
        "happy",
        "happy",
        "surprised",
        None,
    ]


def test_three_input_formats_give_the_same_rows(audiofolder, tmp_path):
    from_folder = load_user_data(audiofolder)
    assert from_folder.has_speakers and len(from_folder.dataset) == 24
    assert from_folder.dataset.features["emotion"].names == sorted(LABELS)
    manifest = tmp_path / "clips.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker"])
        for row in from_folder.dataset:
            writer.writerow([row["audio"], sorted(LABELS)[row["emotion"]], row["speaker"]])
        writer.writerow([str(tmp_path / "gone.wav"), "joy", "spk0"])  # missing file
        writer.writerow([row["audio"], "", "spk0"])  # empty label
    (tmp_path / "broken.wav").write_bytes(b"no audio")
    with open(manifest, "a", newline="") as handle:
        csv.writer(handle).writerow(["broken.wav", "joy", "spk1"])  # relative to the manifest's folder
    from_csv = load_user_data(manifest)
    assert len(from_csv.dataset) == 24
    reasons = sorted(reason.split(" (")[0] for _, reason in from_csv.bad_rows)
    assert reasons == ["empty label", "no such file", "unreadable audio"]
    assert "unreadable audio (Format not recognised.)" in [reason for _, reason in from_csv.bad_rows]
    jsonl = tmp_path / "clips.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps({"path": r["audio"], "emotion": sorted(LABELS)[r["emotion"]]}) for r in from_folder.dataset
        )
    )
    from_jsonl = load_user_data(jsonl)
    assert not from_jsonl.has_speakers and from_jsonl.dataset["audio"] == from_folder.dataset["audio"]
    saved = tmp_path / "saved"
    from_folder.dataset.rename_column("emotion", "label").save_to_disk(str(saved))
    from_saved = load_user_data(saved)
    assert from_saved.dataset["emotion"] == from_folder.dataset["emotion"]


def test_a_saved_dataset_with_an_audio_column_needs_no_torchcodec(audiofolder, tmp_path, monkeypatch):
    """A datasets ``Audio`` column (what load_dataset gives, and what save_to_disk embeds as bytes) was read by
    decoding it, which needs torchcodec (ImportError here), and its embedded rows' paths name no file. Its bytes
    are now written once under the cache and read as files."""
    from datasets import Audio, ClassLabel, Dataset

    monkeypatch.setenv("HF_SER_CACHE", str(tmp_path / "cache"))
    source = load_user_data(audiofolder).dataset
    names = source.features["emotion"].names
    saved = tmp_path / "saved_audio"
    embedded = [{"bytes": Path(path).read_bytes(), "path": f"take_{i}.wav"} for i, path in enumerate(source["audio"])]
    ds = Dataset.from_dict(
        {"audio": embedded, "label": [names[e] for e in source["emotion"]], "speaker": list(source["speaker"])}
    )
    ds.cast_column("audio", Audio(sampling_rate=16000)).save_to_disk(str(saved))
    loaded = load_user_data(saved)
    assert loaded.bad_rows == [] and loaded.has_speakers
    assert isinstance(loaded.dataset.features["emotion"], ClassLabel)
    assert [names[e] for e in loaded.dataset["emotion"]] == [names[e] for e in source["emotion"]]
    for original, written in zip(source["audio"], loaded.dataset["audio"]):
        assert written.startswith(str(tmp_path / "cache" / "extracted"))
        np.testing.assert_array_equal(sf.read(written)[0], sf.read(original)[0])
    inodes = [p.stat().st_ino for p in (tmp_path / "cache" / "extracted").rglob("*.wav")]
    assert list(load_user_data(saved).dataset["audio"]) == list(loaded.dataset["audio"])  # found, not rewritten
    assert [p.stat().st_ino for p in (tmp_path / "cache" / "extracted").rglob("*.wav")] == inodes


def test_a_saved_datasetdict_is_read_through_its_one_split_and_an_empty_one_is_refused(audiofolder, tmp_path):
    """``load_dataset(...).save_to_disk`` writes a DatasetDict (``dataset_dict.json`` and a folder per split): it was
    walked as an audiofolder ("no audio files ... .arrow x2, .json x5"); an empty saved dataset raised datasets'
    IndexError. One split is read; several are refused with each split's folder; no rows is said plainly."""
    from datasets import Dataset, DatasetDict

    source = load_user_data(audiofolder).dataset
    names = source.features["emotion"].names
    ds = Dataset.from_dict({"audio": list(source["audio"]), "label": [names[e] for e in source["emotion"]]})
    DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "one"))
    assert load_user_data(tmp_path / "one").dataset["audio"] == source["audio"]
    DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(ValueError, match=r"DatasetDict with splits \['train', 'test'\]: pass one split's folder"):
        load_user_data(tmp_path / "two")
    assert load_user_data(tmp_path / "two" / "test").dataset["audio"] == source["audio"]
    Dataset.from_dict({"audio": [], "label": []}).save_to_disk(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="empty: the saved dataset holds no rows"):
        load_user_data(tmp_path / "empty")


def test_a_speaker_column_is_found_under_its_common_names(audiofolder, tmp_path):
    """A manifest's ``speaker_id`` (or Common Voice's ``client_id``) was not read as the speaker: the clips were
    split at random by clip, with a warning to add a 'speaker' column the data already had under another name."""
    from datasets import Dataset

    rows = load_user_data(audiofolder).dataset
    names = rows.features["emotion"].names
    manifest = tmp_path / "clips.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker_id"])
        writer.writerows([r["audio"], names[r["emotion"]], r["speaker"]] for r in rows)
    read = load_user_data(manifest)
    assert read.has_speakers and read.dataset["speaker"] == rows["speaker"]
    saved = tmp_path / "saved"
    ids = [int(s[-1]) for s in rows["speaker"]]  # Common Voice style: another name, and not a string
    Dataset.from_dict(
        {"audio": rows["audio"], "label": [names[e] for e in rows["emotion"]], "client_id": ids}
    ).save_to_disk(str(saved))
    read = load_user_data(saved)
    assert read.has_speakers and read.dataset["speaker"] == [str(i) for i in ids]


def test_one_label_is_refused(audiofolder):
    """A folder of one label fine-tuned a model that always answers it, reported at "test accuracy 100.00"."""
    import shutil

    for label in list(LABELS)[1:]:
        shutil.rmtree(audiofolder / label)
    with pytest.raises(ValueError, match=r"needs clips of at least two labels, got only \['anger'\]"):
        load_user_data(audiofolder)


def test_every_label_keeps_training_clips_after_the_split(audiofolder, tmp_path, caplog, capsys):
    """With a few clips, the random split by clip could send a label's every clip to the test side: the model was
    trained without it and "test accuracy 0.00" was all that said so. The split is made within each label, and a
    label left without training clips (by the speaker split) or a split without test clips is refused."""
    from datasets import DatasetDict

    from hf_ser.data.splits import label_stratified_split
    from hf_ser.finetune import check_split_labels

    dataset = load_user_data(audiofolder).dataset
    for seed in range(20):
        splits = label_stratified_split(dataset, test_size=0.4, seed=seed)
        for part in ("train", "test"):
            assert sorted(set(splits[part]["emotion"])) == [0, 1, 2, 3], (seed, part)
        assert splits["test"].num_rows == 4 * 2 and splits["train"].num_rows == 4 * 4  # round(6 * 0.4) per label
    names = dataset.features["emotion"].names
    one_sadness = dataset.filter(lambda row: row["emotion"] != 2 or row["audio"].endswith("_0.wav"))
    split = label_stratified_split(one_sadness, test_size=0.5, seed=0)
    assert split["train"]["emotion"].count(2) == 1 and 2 not in split["test"]["emotion"]  # trained, not tested
    with caplog.at_level(logging.WARNING, logger="hf_ser.finetune"):
        check_split_labels(split, names)
    assert "no test clip for ['sadness']" in caplog.text
    by_speaker = DatasetDict({"train": dataset.filter(lambda row: row["emotion"] != 1), "test": dataset})
    with pytest.raises(ValueError, match=r"no training clip left for joy \(6 clips\) after the test split"):
        check_split_labels(by_speaker, names)
    tiny = tmp_path / "tiny"
    for label in ("anger", "joy"):
        (tiny / label).mkdir(parents=True)
        sf.write(tiny / label / "a.wav", np.zeros(16000, np.float32) + 0.1, 16000)
    assert cli_main(["finetune", str(tiny), "--output-dir", str(tmp_path / "out"), "--init-from", "scratch"]) == 2
    assert "error: no clip left to test on: each label needs clips on both sides" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_broken_link_in_an_audiofolder_is_a_bad_row_not_the_end(audiofolder, tmp_path):
    """The folder walk now reports a link to a missing audio file; fine-tuning ended on it ("not a readable file",
    naming the folder) where every other bad row is left out and reported."""
    (audiofolder / "joy" / "gone.wav").symlink_to(tmp_path / "deleted.wav")
    data = load_user_data(audiofolder)
    assert len(data.dataset) == 24 and [reason for _, reason in data.bad_rows] == ["no such file"]
    assert "gone.wav" in data.bad_rows[0][0]


def test_a_broken_manifest_names_its_file_and_line(tmp_path):
    """A JSON-lines manifest with a broken second line said "Expecting ',' delimiter: line 1 column 21" (the line
    alone, without the file); an empty CSV said "no usable row (0 bad rows, e.g. [])"."""
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav", "label": "joy"}\n\n{"path": "b.wav"\n')
    with pytest.raises(ValueError, match=r"m.jsonl, line 3: not a JSON object \(Expecting ',' delimiter, column 17\)"):
        load_user_data(tmp_path / "m.jsonl")
    (tmp_path / "list.jsonl").write_text('["a.wav", "joy"]\n')
    with pytest.raises(ValueError, match="list.jsonl, line 1: expected a JSON object with a path and a label"):
        load_user_data(tmp_path / "list.jsonl")
    (tmp_path / "sheet.csv").write_text("\ufeffpath,label\ngone.wav,joy\n", encoding="utf-8")  # a BOM, as saved
    with pytest.raises(ValueError, match=r"sheet.csv: no usable row \(1 bad rows"):  # was: needs a 'path' column
        load_user_data(tmp_path / "sheet.csv")  # (got ['\ufeffpath', 'label'])
    (tmp_path / "empty.csv").write_text("path,label\n")
    with pytest.raises(ValueError, match="empty.csv: no rows at all"):
        load_user_data(tmp_path / "empty.csv")


def test_an_audiofolder_without_audio_files_says_what_it_holds(tmp_path):
    (tmp_path / "joy").mkdir()
    (tmp_path / "joy" / "take1.m4a").write_bytes(b"AAC, which libsndfile does not read")
    with pytest.raises(ValueError, match=r"no audio files in this folder \(looked for .*\); it holds .m4a x1"):
        load_user_data(tmp_path)


def test_known_labels_keep_their_trained_rows(tmp_path):
    folder = make_model(tmp_path, labels=["neutral", "happy", "sad", "angry"])
    from transformers import AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(folder)
    before = model.classifier.out_proj.weight.detach().clone()
    body = model.ser.conv_blocks[0].conv.weight.detach().clone()
    new = adapt_head(model, ["anger", "joy", "sarcasm"])
    assert new == ["sarcasm"]
    after = model.classifier.out_proj.weight
    torch.testing.assert_close(after[0], before[3])  # anger = angry
    torch.testing.assert_close(after[1], before[1])  # joy = happy
    assert not any(torch.allclose(after[2], row) for row in before)
    torch.testing.assert_close(model.ser.conv_blocks[0].conv.weight, body)
    assert model.config.id2label == {0: "anger", 1: "joy", 2: "sarcasm"}


@pytest.mark.parametrize("with_speakers", [True, False])
def test_finetune_cli_end_to_end(audiofolder, tmp_path, caplog, capsys, with_speakers):
    from hf_ser import load_classifier

    # a calibrated starting model (as bundled ser-general, 2.07): fine-tuning without validation speakers has
    # nothing to refit on, and the old head's temperature had stayed, flattening the new head's scores
    init = make_model(
        tmp_path / "init",
        labels=["neutral", "happy", "sad", "angry"],
        config_kwargs={"temperature": 2.0, "uncertain_below": 0.3},
    )
    if not with_speakers:
        (audiofolder / "metadata.csv").unlink()
    out = tmp_path / "mine"
    args = ["finetune", str(audiofolder), "--output-dir", str(out), "--init-from", str(init)]
    with caplog.at_level(logging.WARNING, logger="hf_ser"):
        assert cli_main([*args, "--set", "training.num_train_epochs=2"]) == 0
    tuned = json.loads((out / "config.json").read_text())
    assert tuned["temperature"] == 1.0
    assert tuned["uncertain_below"] is None  # a threshold chosen for the old head's scores goes with it
    assert not tuned.get("trained_band_limited", False)  # its clips had no telephone-band copies: the band check counts
    assert (
        "scores are left uncalibrated (temperature 1.0; the starting model's 2.00 and its uncertain threshold 0.3 was"
        in caplog.text
    )
    assert "Scores are not calibrated" in (out / "README.md").read_text()
    assert ("split by speaker" in caplog.text) == with_speakers
    assert ("speaker-dependent" in caplog.text) == (not with_speakers)
    assert "new output rows: ['sarcasm']" in caplog.text
    assert "4 labels (anger, joy, sadness, sarcasm)" in capsys.readouterr().out
    card = (out / "README.md").read_text()
    assert "user data" in card and "anger, joy, sadness, sarcasm" in card
    # the card names the start (a local folder by its name, not its path), whose corpora's terms apply too; only a
    # Hub id would be declared as its base model (the Hub refuses ids it does not have)
    assert "starting from `model`" in card and "those of the corpora `model` was trained on" in card
    assert str(tmp_path) not in card and ModelCard.load(out / "README.md").data.base_model is None
    scores = load_classifier(out)(str(audiofolder / "joy" / "joy_0.wav"), top_k=None)
    assert sorted(d["label"] for d in scores) == sorted(LABELS)
    assert abs(sum(d["score"] for d in scores) - 1) < 1e-5
    scratch = tmp_path / "scratch"
    assert cli_main([*args[:3], str(scratch), "--init-from", "scratch", "--set", "training.num_train_epochs=1"]) == 0
    assert json.loads((scratch / "config.json").read_text())["id2label"]["3"] == "sarcasm"
    assert "trained from random weights" in (scratch / "README.md").read_text()
    assert np.isfinite(json.loads((scratch / "metrics.json").read_text())["test"]["accuracy"])
    # the seed decides a new head's initial weights: run again from another generator state, get the same model
    torch.manual_seed(12345)
    again = tmp_path / "scratch-again"
    assert cli_main([*args[:3], str(again), "--init-from", "scratch", "--set", "training.num_train_epochs=1"]) == 0
    first, second = (load_file(folder / "model.safetensors") for folder in (scratch, again))
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_validation_speakers_keep_the_best_epoch_and_calibrate_the_scores(audiofolder, tmp_path, caplog, capsys):
    """``--val-size`` holds out speakers the model neither trains nor is tested on: the temperature fitted on them
    is stored in the config (the pipeline applies it) and the card reads "Calibrated scores"; without a speaker
    column it is refused, since clips of the training speakers would fit the temperature to what the model heard."""
    init = make_model(
        tmp_path / "init", labels=["neutral", "happy", "sad", "angry"], config_kwargs={"uncertain_below": 0.3}
    )
    out = tmp_path / "calibrated"
    args = ["finetune", str(audiofolder), "--output-dir", str(out), "--init-from", str(init)]
    with caplog.at_level(logging.WARNING, logger="hf_ser"):
        assert cli_main([*args, "--val-size", "0.3", "--set", "training.num_train_epochs=2"]) == 0
    assert "1 train, 1 validation, 1 test speakers" in caplog.text
    assert "fitted on the validation speakers" in caplog.text
    assert "left uncalibrated" not in caplog.text
    metrics = json.loads((out / "metrics.json").read_text())
    speakers = metrics["speakers"]
    assert len({s for part in speakers.values() for s in part}) == 3  # three disjoint parts, one speaker each
    calibration = metrics["calibration"]
    assert json.loads((out / "config.json").read_text())["temperature"] == pytest.approx(calibration["temperature"])
    assert calibration["temperature"] != 1.0
    assert json.loads((out / "config.json").read_text())["uncertain_below"] is None  # chosen for the old head
    assert "uncertain threshold 0.3 was chosen for its own head's scores: dropped" in caplog.text
    assert calibration["validation_nll"] <= calibration["validation_nll_raw"] + 1e-9  # the fit can only lower it
    card = (out / "README.md").read_text()
    assert "Calibrated scores" in card and "Scores are not calibrated" not in card
    (audiofolder / "metadata.csv").unlink()
    capsys.readouterr()
    assert cli_main([*args[:3], str(tmp_path / "refused"), "--val-size", "0.3"]) != 0
    err = capsys.readouterr().err
    assert "--val-size 0.3 holds out validation speakers" in err and "it has no speaker column" in err
    with pytest.raises(SystemExit):
        cli_main([*args, "--val-size", "0"])  # a share strictly between 0 and 1
    assert "expected a number between 0 and 1, got 0.0" in capsys.readouterr().err


def test_a_speaker_adaptive_model_is_fine_tuned_on_clips_standardised_per_speaker(audiofolder, tmp_path, capsys):
    """Fine-tuning from ser-general-adaptive stopped at feature extraction ("adapt the feature extractor to the
    speaker first ... hf-ser predict --adapt-on"): its training clips are now standardised per speaker, as it was
    trained, and the tuned model stays adaptive (it refuses unadapted audio and answers once adapted)."""
    from hf_ser import load_classifier

    init = make_model(tmp_path / "init", labels=["neutral", "happy", "sad", "angry"])
    settings = json.loads((init / "preprocessor_config.json").read_text())
    (init / "preprocessor_config.json").write_text(json.dumps({**settings, "speaker_adaptive": True}))
    out = tmp_path / "mine"
    args = ["finetune", str(audiofolder), "--output-dir", str(out), "--init-from", str(init)]
    assert cli_main([*args, "--set", "training.num_train_epochs=1"]) == 0
    assert json.loads((out / "preprocessor_config.json").read_text())["speaker_adaptive"] is True
    assert yaml_of(out / "experiment.yaml")["data"]["speaker_adaptive"] is True
    clip = str(audiofolder / "joy" / "joy_0.wav")
    with pytest.raises(ValueError, match="adapt the feature extractor to the speaker first"):
        load_classifier(out)(clip)
    speaker_clips = [str(audiofolder / label / f"{label}_{i}.wav") for label in LABELS for i in (0, 3)]  # spk0
    scores = load_classifier(out, adapt_on=speaker_clips)(clip, top_k=None)
    assert sorted(d["label"] for d in scores) == sorted(LABELS)
    (audiofolder / "metadata.csv").unlink()  # no speakers: nothing to standardise each clip with
    capsys.readouterr()
    assert cli_main([*args[:3], str(tmp_path / "none"), *args[4:]]) == 2
    assert f"--init-from {init} is speaker-adaptive: it is fine-tuned on clips standardised with their own" in (
        capsys.readouterr().err
    )


def yaml_of(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_a_manifest_suffix_is_read_in_any_case(audiofolder, tmp_path):
    """A spreadsheet saved "train.CSV", which was refused as "expected an audiofolder, a .csv/.jsonl manifest"."""
    rows = [f"{path},{label}" for path, label in sorted((str(p), p.parent.name) for p in audiofolder.rglob("*.wav"))]
    (tmp_path / "train.CSV").write_text("path,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "train.JSONL").write_text(
        "".join(json.dumps({"path": p, "label": lab}) + "\n" for p, lab in (row.split(",") for row in rows))
    )
    assert len(load_user_data(tmp_path / "train.CSV").dataset) == len(rows) == 24
    assert len(load_user_data(tmp_path / "train.JSONL").dataset) == 24


def test_labels_that_differ_only_in_case_are_refused(audiofolder):
    """A manifest typed by hand ("Angry" on some rows, "angry" on others) trained two classes of the one emotion,
    each with part of its clips, and the model's answers split between them."""
    (audiofolder / "anger").rename(audiofolder / "Anger")
    (audiofolder / "anger").mkdir()
    (audiofolder / "Anger" / "anger_0.wav").rename(audiofolder / "anger" / "anger_0.wav")
    with pytest.raises(ValueError, match=r"labels that differ only in case: \[\['Anger', 'anger'\]\]"):
        load_user_data(audiofolder)


def test_finetune_takes_training_keys_and_its_own_split_options(audiofolder, tmp_path, capsys):
    """`--set protocol.test_size=0.5` and `--set features.n_mfcc=20` were taken and ignored (the split is made by
    fine-tuning, the features are the starting model's); the split's size is now an option of its own."""
    init = make_model(tmp_path / "init", labels=["neutral", "happy", "sad", "angry"])
    (audiofolder / "metadata.csv").unlink()  # no speakers: 6 clips a label, split within each label
    args = ["finetune", str(audiofolder), "--output-dir", str(tmp_path / "out"), "--init-from", str(init)]
    for key in ("protocol.test_size=0.5", "features.n_mfcc=20", "model.preset=small"):
        assert cli_main([*args, "--set", key]) == 2
        assert f"--set {key}: fine-tuning takes training.* and augmentation.* keys" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert cli_main([*args, "--test-size", "0.5", "--set", "training.num_train_epochs=1"]) == 0
    assert "on 12 clips" in capsys.readouterr().out  # 3 of each label's 6 (0.2: 1 of 6, 4 clips)


def test_an_audiofolder_becomes_a_dataset_the_pipeline_reads_without_torchcodec(audiofolder, tmp_path, caplog):
    import importlib.util

    from datasets import load_dataset
    from transformers.pipelines.pt_utils import KeyDataset

    from hf_ser import load_audio_dataset, load_classifier

    (audiofolder / "sarcasm" / "sarcasm_9.wav").write_bytes(b"not audio")  # a bad row: logged, the rest kept
    with caplog.at_level(logging.WARNING, logger="hf_ser"):
        ds = load_audio_dataset(audiofolder)
    assert "sarcasm_9.wav): unreadable audio" in caplog.text
    assert ds.column_names == ["audio", "emotion", "speaker"] and ds.num_rows == 6 * len(LABELS)
    assert ds.features["emotion"].names == sorted(LABELS)
    first = ds[0]
    assert Path(first["audio"]).is_file() and first["speaker"] in {"spk0", "spk1", "spk2"}
    assert Path(first["audio"]).parent.name == ds.features["emotion"].int2str(first["emotion"])
    clf = load_classifier(make_model(tmp_path))
    batched = list(clf(KeyDataset(ds, "audio"), batch_size=4, top_k=None))
    for answer, path in zip(batched, ds["audio"], strict=True):
        single = clf(path, top_k=None)
        assert [d["label"] for d in answer] == [d["label"] for d in single]
        np.testing.assert_allclose([d["score"] for d in answer], [d["score"] for d in single], atol=1e-5)
    if importlib.util.find_spec("torchcodec") is None:  # why the helper exists: datasets' own builder needs it
        with pytest.raises(Exception) as caught:
            load_dataset("audiofolder", data_dir=str(audiofolder), cache_dir=str(tmp_path / "hf"))
        assert "torchcodec" in repr(caught.value.__cause__) + repr(caught.value)
