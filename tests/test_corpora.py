import logging
from collections import Counter
from pathlib import Path

import pytest

from hf_ser.data.corpora import CORPORA, CorpusLayoutError, load_corpora, load_corpus, unified_label_set

from .conftest import SHARED_CORPORA
from .fixtures import make_crema_d, make_emodb, make_emovo, make_ravdess, make_savee, make_tess, write


def counts(ds, column="emotion"):
    names = ds.features[column].names if column == "emotion" else None
    return Counter(names[v] if names else v for v in ds[column])


def test_registry_names():
    assert set(CORPORA) == {"savee", "ravdess", "crema_d", "tess", "emodb", "emovo", "ased"}


def test_ravdess(tmp_path):
    ds, report = load_corpus("ravdess", make_ravdess(tmp_path), return_report=True)
    assert len(ds) == 6 * 15
    assert report.excluded == Counter({"song (vocal channel 02)": 6, "non-audio modality (video files)": 6})
    assert "excluded 6 non-audio modality (video files), 6 song (vocal channel 02)" in ds.info.description
    assert counts(ds)["neutral"] == 6 and counts(ds)["calm"] == 12
    row = ds[0]
    assert row["speaker"] == "01" and row["gender"] == "male" and row["corpus"] == "ravdess"
    assert row["intensity"] == "normal" and row["statement"] == 1 and row["repetition"] == 1
    assert row["audio"].endswith("Actor_01/03-01-01-01-01-01-01.wav")
    assert Counter(ds["gender"]) == {"male": 45, "female": 45}
    assert ds.features["emotion"].names == [
        "neutral",
        "calm",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "surprised",
    ]


def test_any_soundfile_extension(tmp_path):
    ds = load_corpus("ravdess", make_ravdess(tmp_path, actors=[1], ext="flac"))
    assert len(ds) == 15 and ds[0]["audio"].endswith(".flac")


def test_crema_d_with_and_without_demographics(tmp_path):
    ds = load_corpus("crema_d", make_crema_d(tmp_path / "a"))
    assert len(ds) == 24 and set(ds["sentence"]) == {"DFA"}
    assert dict(zip(ds["speaker"], ds["gender"]))["1001"] == "male"
    assert dict(zip(ds["speaker"], ds["gender"]))["1002"] == "female"
    assert counts(ds, "level") == {"high": 4, "unspecified": 12, "low": 4, "medium": 4}
    bare = load_corpus("crema_d", make_crema_d(tmp_path / "b", demographics=False))
    assert set(bare["gender"]) == {"unknown"}


def test_tess_inside_kaggle_wrapper(tmp_path):
    ds = load_corpus("tess", make_tess(tmp_path))
    assert len(ds) == 28 and set(ds["gender"]) == {"female"} and set(ds["speaker"]) == {"OAF", "YAF"}
    assert counts(ds)["pleasant_surprise"] == 4 and counts(ds)["fear"] == 4
    assert set(ds["word"]) == {"back", "bar"}


@pytest.mark.parametrize("flat", [False, True])
def test_savee_both_layouts(tmp_path, flat):
    ds = load_corpus("savee", make_savee(tmp_path, flat=flat))
    assert len(ds) == 56 and set(ds["speaker"]) == {"DC", "JE", "JK", "KL"} and set(ds["gender"]) == {"male"}
    assert counts(ds) == {e: 8 for e in ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]}
    if not flat:  # the same file name in every speaker folder: ids stay unique
        assert len(set(ds["utterance_id"])) == 56


def test_emodb(tmp_path):
    ds = load_corpus("emodb", make_emodb(tmp_path))
    assert len(ds) == 28 and ds.features["emotion"].names[1] == "boredom"
    genders = dict(zip(ds["speaker"], ds["gender"]))
    assert genders == {"03": "male", "08": "female", "09": "female", "10": "male"}
    assert set(ds["text"]) == {"a01"}


def test_emovo(tmp_path):
    ds = load_corpus("emovo", make_emovo(tmp_path))
    assert len(ds) == 28 and dict(zip(ds["speaker"], ds["gender"]))["m2"] == "male"
    assert counts(ds)["joy"] == 4 and set(ds["sentence"]) == {"b1"}


def test_unmatched_files_reported_and_strict(tmp_path, caplog):
    root = make_emodb(tmp_path)
    write(root / "wav" / "notes.wav", 1)
    write(root / "wav" / "99a01Wa.wav", 2)  # unknown speaker
    (root / "README.txt").write_text("x")
    with caplog.at_level(logging.WARNING, logger="hf_ser.corpora"):
        ds, report = load_corpus("emodb", root, return_report=True)
    assert len(ds) == 28 and sorted(report.unmatched) == ["wav/99a01Wa.wav", "wav/notes.wav"]
    assert report.non_audio == 1
    assert "2 audio files match no naming rule" in ds.info.description
    assert "2 audio files match no naming rule" in caplog.text
    with pytest.raises(CorpusLayoutError, match="strict=True.*notes.wav"):
        load_corpus("emodb", root, strict=True)


def test_corpus_loaders_take_the_audio_suffixes_batch_runs_take(tmp_path):
    """One definition of an audio file: an Opus file (which predict classifies) that matches no naming rule is
    reported as unmatched audio; it was counted as non-audio, since "opus" is not one of libsndfile's format names,
    while the loaders took format names such as "mat4" and "htk" for suffixes."""
    root = make_emodb(tmp_path)
    (root / "wav" / "recording.OPUS").write_bytes(b"x")
    (root / "wav" / "data.mat4").write_bytes(b"x")
    _, report = load_corpus("emodb", root, return_report=True)
    assert report.unmatched == ["wav/recording.OPUS"] and report.non_audio == 1


def test_a_linked_actor_folder_is_read_and_a_broken_link_reported(tmp_path, caplog):
    """``Path.rglob`` left a linked folder out (an actor folder linked in from another disk: its clips were never
    loaded) and a link to a missing file, both without a word."""
    root = make_ravdess(tmp_path / "ravdess")
    elsewhere = tmp_path / "other-disk"
    elsewhere.mkdir()
    before = len(load_corpus("ravdess", root))
    actor = sorted(p for p in root.rglob("Actor_*") if p.is_dir())[-1]
    actor.rename(elsewhere / actor.name)
    actor.symlink_to(elsewhere / actor.name, target_is_directory=True)
    (root / "03-01-05-01-01-01-24.wav").symlink_to(tmp_path / "deleted.wav")
    with caplog.at_level(logging.WARNING, logger="hf_ser.corpora"):
        ds, report = load_corpus("ravdess", root, return_report=True)
    assert len(ds) == before and report.loaded == before
    assert report.unreadable == ["03-01-05-01-01-01-24.wav"]
    assert "1 not readable files (links to missing files?) left out" in caplog.text


def test_missing_or_empty_folder_names_corpus_and_layout(tmp_path):
    with pytest.raises(CorpusLayoutError, match=r"savee: data folder .* does not exist; expected layout: AudioData"):
        load_corpus("savee", tmp_path / "nowhere")
    write(tmp_path / "x" / "hello.wav", 1)
    with pytest.raises(CorpusLayoutError, match=r"tess: no file .* matches.*OAF_angry.*hello.wav"):
        load_corpus("tess", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown corpus 'iemocap'"):
        load_corpus("iemocap", tmp_path)


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_a_folder_of_another_corpus_is_named_in_the_error(corpus, tmp_path):
    """A TESS folder given to a RAVDESS experiment said only that nothing matched RAVDESS's naming."""
    wrong = "emodb" if corpus != "emodb" else "ravdess"
    files = CORPORA[corpus]()
    for i, emotion in enumerate(files.emotions):
        write(tmp_path / files.example_file(emotion, files.example_speakers[0], i), 1)
    with pytest.raises(CorpusLayoutError, match=rf"{wrong}: no file .* they follow {corpus}'s naming \(\d+ of the"):
        load_corpus(wrong, tmp_path)
    write(tmp_path.parent / "plain" / "hello.wav", 1)  # a folder of no corpus: no guess
    with pytest.raises(CorpusLayoutError) as err:
        load_corpus(wrong, tmp_path.parent / "plain")
    assert "naming (" not in str(err.value)


def test_unified_labels_and_load_corpora(tmp_path):
    assert unified_label_set(["ravdess", "emodb"], common_only=True) == [
        "neutral",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
    ]
    assert "calm" not in unified_label_set(["ravdess"], merge_calm=True)
    dirs = {"ravdess": make_ravdess(tmp_path / "r", actors=[1, 2]), "emodb": make_emodb(tmp_path / "e")}
    both = load_corpora(["ravdess", "emodb"], dirs, merge_calm=True)
    names = both.features["emotion"].names
    assert names == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised", "boredom"]
    c = Counter((corpus, names[e]) for corpus, e in zip(both["corpus"], both["emotion"]))
    assert c[("ravdess", "neutral")] == 2 + 4  # neutral + calm merged
    assert c[("emodb", "boredom")] == 4 and c[("emodb", "happy")] == 4
    assert both.column_names == ["audio", "emotion", "speaker", "gender", "corpus", "utterance_id"]
    common = load_corpora(["ravdess", "emodb"], [dirs["ravdess"], dirs["emodb"]], common_only=True)
    assert len(common) == 30 - 4 - 4 + 28 - 4  # calm, surprised, boredom left out


@pytest.mark.real_data
def test_real_corpora_counts():
    ravdess = load_corpus("ravdess", SHARED_CORPORA / "ravdess")
    assert len(ravdess) == 1440 and len(set(ravdess["speaker"])) == 24
    assert counts(ravdess) == {"neutral": 96, **{e: 192 for e in ravdess.features["emotion"].names[1:]}}
    emodb = load_corpus("emodb", SHARED_CORPORA / "emodb")
    assert len(emodb) == 535 and len(set(emodb["speaker"])) == 10
    letters = {"anger": 127, "boredom": 81, "neutral": 79, "happiness": 71, "fear": 69, "sadness": 62, "disgust": 46}
    assert counts(emodb) == letters


@pytest.mark.real_data
def test_real_tess_loads_all_2800_files_including_the_kaggle_oddities():
    tess, report = load_corpus("tess", SHARED_CORPORA / "tess", strict=True, return_report=True)
    assert len(tess) == 2800 and not report.unmatched
    assert sorted(set(tess["speaker"])) == ["OAF", "YAF"] and set(tess["gender"]) == {"female"}
    assert counts(tess) == {e: 400 for e in tess.features["emotion"].names}
    odd = [a for a in tess["audio"] if a.endswith("OA_bite_neutral.flac")]
    assert len(odd) == 1 and tess[tess["audio"].index(odd[0])]["speaker"] == "OAF"


@pytest.mark.real_data
def test_real_ased_loads_65_speakers_from_ogg_opus():
    ased, report = load_corpus("ased", SHARED_CORPORA / "ased", strict=True, return_report=True)
    assert len(ased) == 2474 and not report.unmatched
    genders = dict(zip(ased["speaker"], ased["gender"]))
    assert len(genders) == 65 and sorted(Counter(genders.values()).items()) == [("female", 25), ("male", 40)]
    assert counts(ased) == {"neutral": 522, "fearful": 510, "happy": 486, "sad": 470, "angry": 486}
    capital = [a for a in ased["audio"] if Path(a).name.startswith("S4-")]
    assert len(capital) == 1 and ased[ased["audio"].index(capital[0])]["emotion"] == ased.features["emotion"].str2int(
        "sad"
    )


def test_ased_naming_rule(tmp_path):
    from hf_ser.data.corpora import get_corpus

    ased = get_corpus("ased")
    assert ased.parse(Path("a5-03-01-02-50.ogg")) == {
        "emotion": "angry",
        "speaker": "50",
        "gender": "male",
        "sentence": "03",
    }
    assert ased.parse(Path("S4-06-02-01-13.ogg"))["emotion"] == "sad"
    assert ased.parse(Path("x9-03-01-02-50.ogg")) is None and ased.parse(Path("a5-03-01-03-50.ogg")) is None


def _emobox_copy(root: Path, data, folds: list[set[str]]) -> Path:
    """EmoBox-style fold files for ``data`` (one corpus): fold k tests the speakers in ``folds[k]``."""
    import json

    corpus = data[0]["corpus"]
    for k, test_speakers in enumerate(folds, 1):
        folder = root / corpus / f"fold_{k}"
        folder.mkdir(parents=True)
        for part, keep in (("test", True), ("train", False)):
            rows = [r for r in data if (r["speaker"] in test_speakers) == keep]
            lines = [
                json.dumps({"key": Path(r["audio"]).stem, "wav": f"downloads/x/{Path(r['audio']).stem}.wav"})
                for r in rows
            ]
            (folder / f"{corpus}_{part}_fold_{k}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_emobox_folds_by_speaker_and_random(tmp_path, monkeypatch):
    from hf_ser.data.emobox import emobox_folds
    from hf_ser.training.protocols import ProtocolSettings, get_protocol

    data = load_corpus("ravdess", make_ravdess(tmp_path / "r", actors=range(1, 7)))
    root = _emobox_copy(tmp_path / "emobox", data, [{"01", "02"}, {"03", "04"}])
    folds, independent = emobox_folds(data, val_size=0.25, root=root)
    assert independent and [n for n, _ in folds] == ["fold_1", "fold_2"]
    fold = folds[0][1]
    assert set(fold["test"]["speaker"]) == {"01", "02"} and len(fold["test"]) + len(fold["train"]) + len(
        fold["validation"]
    ) == len(data)
    assert not set(fold["validation"]["speaker"]) & set(fold["train"]["speaker"])
    monkeypatch.setenv("HF_SER_EMOBOX", str(root))
    assert len(get_protocol("emobox").folds(data, ProtocolSettings(), None)) == 2
    with pytest.raises(ValueError, match="use protocol 'emobox'"):
        get_protocol("emobox-random").folds(data, ProtocolSettings(), None)
    # a random fold (the same speakers on both sides) is refused by "emobox" and taken by "emobox-random"
    import json

    folder = tmp_path / "random" / "ravdess" / "fold_1"
    folder.mkdir(parents=True)
    stems = [Path(a).stem for a in data["audio"]]
    for part, in_test in (("test", True), ("train", False)):
        lines = [json.dumps({"wav": f"x/{stem}.wav"}) for i, stem in enumerate(stems) if (i % 4 == 0) == in_test]
        (folder / f"ravdess_{part}_fold_1.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("HF_SER_EMOBOX", str(tmp_path / "random"))
    with pytest.raises(ValueError, match="random .* use protocol 'emobox-random'"):
        get_protocol("emobox").folds(data, ProtocolSettings(), None)
    ((_, random_fold),) = get_protocol("emobox-random").folds(data, ProtocolSettings(val_size=0.0), None)
    assert set(random_fold["test"]["speaker"]) & set(random_fold["train"]["speaker"])


@pytest.mark.real_data
def test_real_emobox_folds_match_its_readme():
    from hf_ser.data.emobox import emobox_folds

    ravdess = load_corpus("ravdess", SHARED_CORPORA / "ravdess")
    folds, independent = emobox_folds(ravdess)
    assert independent and len(folds) == 6 and all(len(f["test"]) == 240 for _, f in folds)
    assert sorted(set(folds[0][1]["test"]["speaker"])) == ["01", "11", "20", "21"]
    for name, expected in [("emodb", (5, 107)), ("tess", (1, 700)), ("ased", (1, 616))]:
        folds, independent = emobox_folds(load_corpus(name, SHARED_CORPORA / name))
        assert not independent and (len(folds), len(folds[0][1]["test"])) == expected, name
