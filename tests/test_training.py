import json
import logging
import os
import subprocess
import sys

import evaluate
import numpy as np
import pytest
import yaml
from transformers import AutoModelForAudioClassification, Trainer

from hf_ser import load_classifier
from hf_ser.cli import main as cli_main
from hf_ser.data import speaker_independent_split
from hf_ser.data.corpora import load_corpus
from hf_ser.metrics import SER_METRICS_PATH
from hf_ser.publish.release import ReleasePlan
from hf_ser.training.config import ExperimentConfigError, experiment_from_dict, load_experiment
from hf_ser.training.results import ProtocolResult, RunResult
from hf_ser.training.run import run_split, train

from .conftest import ROOT
from .fixtures import make_emodb, make_ravdess

TINY = {
    "data": {"corpus": "ravdess"},
    "features": {"sampling_rate": 8000, "n_fft": 256, "hop_length": 80, "win_length": 200, "n_mels": 40, "n_mfcc": 20},
    "model": {
        "conv_channels": [16, 16],
        "conv_kernel_sizes": [3, 3],
        "conv_dilations": [1, 2],
        "conv_pool_sizes": [2, 1],
        "classifier_hidden_size": 16,
    },
    "augmentation": {"copies": [[{"name": "Gain", "min_gain_db": -3, "max_gain_db": -3, "p": 1.0}]]},
    "protocol": {"name": "holdout", "test_size": 0.34, "val_size": 0.17, "seed": 0},
    "training": {
        "learning_rate": 0.01,
        "num_train_epochs": 6,
        "per_device_train_batch_size": 16,
        "num_proc": 1,
        "logging_steps": 5,
        "early_stopping_patience": None,
        "warmup_steps": 0.0,
    },
}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_SER_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def corpus_dir(tmp_path):
    return make_ravdess(tmp_path / "ravdess", actors=range(1, 7), learnable=True)


def tiny(**changes):
    raw = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        raw.setdefault(section, {})[key] = value
    return experiment_from_dict(raw)


# ----------------------------------------------------------------------------------------------- metrics
def test_metric_module_against_hand_computed_values():
    metric = evaluate.load(SER_METRICS_PATH)
    refs = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    preds = [0, 0, 1, 2, 1, 1, 2, 2, 0, 2]
    out = metric.compute(predictions=preds, references=refs, label_names=["a", "b", "c"])
    # recalls a 2/4, b 2/2, c 3/4; precisions a 2/3, b 2/3, c 3/4
    assert out["accuracy"] == pytest.approx(7 / 10)
    assert out["uar"] == pytest.approx((0.5 + 1 + 0.75) / 3)
    f1 = [2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), 2 * (2 / 3) * 1 / (2 / 3 + 1), 0.75]
    assert out["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert out["weighted_f1"] == pytest.approx((4 * f1[0] + 2 * f1[1] + 4 * f1[2]) / 10)
    assert out["per_class"]["b"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    assert out["confusion_matrix"] == [[2, 1, 1], [0, 2, 0], [1, 0, 3]]


def test_metric_class_never_predicted_and_absent():
    metric = evaluate.load(SER_METRICS_PATH)
    out = metric.compute(predictions=[0, 0, 0], references=[0, 1, 0], num_labels=3)
    assert out["uar"] == pytest.approx(0.5)  # class 2 has no reference: left out of the macro average
    assert out["per_class"]["1"]["precision"] == 0.0


# ------------------------------------------------------------------------------------------- experiments
EXPERIMENT_FILES = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.name != "experiments.yaml")


def test_registered_experiments_all_validate():
    from hf_ser.publish.release import ReleasePlan

    path = ROOT / "configs" / "experiments.yaml"
    plan = ReleasePlan.load(path)
    assert plan.experiments
    for name, spec in {**plan.experiments, **plan.checkpoints}.items():
        overrides = spec.overrides() if name in plan.experiments else spec.set  # as the runner applies them
        exp = load_experiment(path.parent / spec.config, overrides)
        assert exp.training.trainer_arguments(), name


# the recipes that built the bundled checkpoints, as the --set strings they were registered with before the recipe
# files existed: the files must give the same experiment (and their cross-validation rows the same recipe)
FAST = [
    "augmentation.copies=[]",
    "protocol.val_size=0.0",
    "training.early_stopping_patience=null",
    "training.num_train_epochs=30",
    "training.max_train_frames=250",
    "training.time_masks=2",
    "training.feature_masks=2",
]


def _copies_of(row: str) -> list[str]:
    """The ``augmentation.copies`` --set strings (a list, then its appends) of a registered row, in order (for the
    recipes that adopted its copies)."""
    spec = ReleasePlan.load(ROOT / "configs" / "experiments.yaml").experiments[row]
    return [s for s in spec.set if s.startswith("augmentation.copies")]


SHIPPED_RECIPES = {
    "ser-general": (
        "v0.1/multi_corpus.yaml",
        [
            *FAST,
            "features.mean_normalization=level",
            "data.corpus=[ravdess, emodb, tess, ased]",
            "evaluation.features={trim_db: 50.0, trim_margin: 0.5}",  # it answers with the silence cut
        ],
    ),
    "ser-ravdess": (
        "v0.1/ravdess.yaml",
        [*FAST, "features.feature_type=log_mel", "features.mean_normalization=level", "model.ensemble_size=3"],
    ),
    "ser-emodb": (
        "v0.1/emodb.yaml",
        [*FAST, "features.feature_type=log_mel", "features.mean_normalization=level", "training.frequency_warp=0.1"],
    ),
    "ser-general-adaptive": (
        "v0.1/multi_corpus.yaml",
        [
            *FAST,
            "features.mean_normalization=level",
            "data.speaker_adaptive=true",
            "evaluation.features={trim_db: null, trim_margin: 0.5}",
        ],
    ),
    "ser-whisper-general": (  # + the copies, consistency, state dropout and rooms robustness experiments confirmed
        "whisper.yaml",
        [
            "data.corpus=[ravdess, emodb, tess]",
            "data.merge_calm=true",
            "data.exclude_labels=[boredom]",
            "training.num_train_epochs=24",  # RAVDESS alone 40 (candidate 34); 15 against 25 before: the same ratio
            *_copies_of("robust-whisper-ravdess-babble-consistency-state-dropout-extra-rooms-0.5-40-epochs"),
            "training.consistency_weight=2.0",
            "model.state_dropout=0.5",
        ],
    ),
    "ser-whisper-general-adaptive": (  # the whisper-lococ-*-speaker rows' recipe, on the three corpora
        "whisper.yaml",
        [
            "data.corpus=[ravdess, emodb, tess]",
            "data.merge_calm=true",
            "data.exclude_labels=[boredom]",
            "training.num_train_epochs=15",
            "data.speaker_adaptive=true",
            "model.state_dropout=0.0",  # not inherited from ser-whisper-general's recipe: not measured with it
        ],
    ),
}


def _as_trained(experiment: dict) -> dict:
    """An experiment's dump without its answering steps (``evaluation.features``: they change no training)."""
    return {**experiment, "evaluation": {**experiment["evaluation"], "features": {}}}


BEST_ROWS = {  # each corpus overlay -> the registered row that measured the best recipe we know for it
    "ravdess.yaml": "ravdess-v20-ensemble",
    "emodb.yaml": "emodb-v15-warp",
    "tess.yaml": "tess-v2-level",
    "multi_corpus.yaml": "general-speaker-5fold",
}


@pytest.mark.parametrize("overlay", sorted(BEST_ROWS))
def test_corpus_overlays_give_the_best_recipe_we_know(overlay):
    from hf_ser.publish.release import ReleasePlan

    row = ReleasePlan.load(ROOT / "configs" / "experiments.yaml").experiments[BEST_ROWS[overlay]]
    measured = load_experiment(ROOT / "configs" / row.config, row.set)
    overlay_trained = _as_trained(load_experiment(ROOT / "configs" / overlay).model_dump())
    assert overlay_trained == measured.model_dump()  # protocol included


@pytest.mark.parametrize("name", sorted(SHIPPED_RECIPES))
def test_recipe_files_are_the_shipped_recipes(name):
    from hf_ser.publish.release import ReleasePlan

    plan = ReleasePlan.load(ROOT / "configs" / "experiments.yaml")
    spec = plan.checkpoints[name]
    assert spec.config == f"recipes/{name}.yaml" and not spec.set  # the recipe is a file, not --set strings
    base, overrides = SHIPPED_RECIPES[name]
    recipe = load_experiment(ROOT / "configs" / spec.config).model_dump()
    assert recipe == load_experiment(ROOT / "configs" / base, overrides).model_dump()
    # the bundled model answers as its recipe says (a retrain would give it what the recipe holds)
    answering = load_experiment(ROOT / "configs" / spec.config).answering_feature_extractor()
    shipped = json.loads((ROOT / "hf_ser" / "checkpoints" / name / "preprocessor_config.json").read_text())
    assert shipped.get("trim_db") == answering.trim_db
    if answering.trim_db is not None:
        assert shipped["trim_margin"] == answering.trim_margin
    if spec.cross_validation:  # the row that measured it trained the same recipe (its protocol aside)
        row = plan.experiments[spec.cross_validation]
        measured = load_experiment(ROOT / "configs" / row.config, row.set).model_dump()
        recipe_trained = _as_trained(recipe)
        assert {k: v for k, v in measured.items() if k != "protocol"} == {
            k: v for k, v in recipe_trained.items() if k != "protocol"
        }
    if spec.robustness:  # the row scored under recording conditions trained the same way, on RAVDESS alone
        row = plan.experiments[spec.robustness]
        measured = load_experiment(ROOT / "configs" / row.config, row.set).model_dump()
        for section in ("features", "model", "augmentation"):
            assert measured[section] == recipe[section], section
        epochs = "num_train_epochs"  # pooled corpora are 2-3x larger than one: fewer epochs
        assert {k: v for k, v in measured["training"].items() if k != epochs} == {
            k: v for k, v in recipe["training"].items() if k != epochs
        }


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_shipped_configs_validate(path):
    exp = load_experiment(path)
    raw = yaml.safe_load(path.read_text())
    corpus = (raw.get("data") or {}).get("corpus")
    if corpus:  # an overlay's own corpus wins over the base it extends
        assert exp.corpora == ([corpus] if isinstance(corpus, str) else corpus)
    args = exp.training_arguments(ROOT / "runs" / "never-written", has_validation=True, distributed=False)
    assert args.num_train_epochs == exp.training.trainer_arguments()["num_train_epochs"]


def test_paper_configs_reproduce_the_paper():
    exp = load_experiment(ROOT / "configs" / "paper" / "ravdess.yaml")
    fe = exp.feature_extractor()
    assert (fe.sampling_rate, fe.n_mfcc, fe.n_fft, fe.hop_length, fe.n_mels, fe.max_duration, fe.offset) == (
        22050,
        20,
        2048,
        512,
        128,
        2.5,
        0.6,
    )
    assert exp.protocol.name == "paper" and exp.data.merge_calm
    args = exp.training_arguments(ROOT / "runs" / "never-written", has_validation=False, distributed=False)
    assert (args.learning_rate, args.num_train_epochs, args.per_device_train_batch_size) == (1e-5, 100, 32)
    assert (exp.protocol.test_size, exp.protocol.seed) == (0.2, 42)
    config = exp.build_model_config([f"l{i}" for i in range(7)])
    assert config.pooling == "flatten" and config.num_frames == 108 and list(config.conv_channels) == [256, 256]
    emodb = load_experiment(ROOT / "configs" / "paper" / "emodb.yaml")
    assert emodb.training.trainer_arguments()["per_device_train_batch_size"] == 16


def test_overlays_extend_the_base(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(TINY))
    (tmp_path / "overlay.yaml").write_text(
        "extends: base.yaml\ndata: {corpus: emodb}\ntraining: {num_train_epochs: 2}\n"
    )
    exp = load_experiment(tmp_path / "overlay.yaml")
    assert exp.corpora == ["emodb"] and exp.training.trainer_arguments()["num_train_epochs"] == 2
    assert exp.training.trainer_arguments()["learning_rate"] == 0.01  # from the base
    assert exp.model["conv_channels"] == [16, 16]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"training": {"lr": 0.1}}, "unknown key 'training.lr'"),
        ({"training": {"num_train_epochs": "ten"}}, "'training.num_train_epochs': input should be a valid number"),
        ({"training": {"max_train_frames": "long"}}, "'training.max_train_frames': input should be a valid integer"),
        ({"model": {"pooling": 3}}, "(?s)'model':.*pooling must be one of"),
        ({"model": {"layers": 3}}, "unknown key 'model.layers'"),
        ({"features": {"n_mfc": 3}}, "unknown key 'features.n_mfc'"),
        ({"protocol": {"name": "kfold"}}, "'protocol.name': unknown protocol 'kfold'; known: holdout"),
        ({"data": {"corpus": "iemocap"}}, "unknown corpus 'iemocap'"),
        ({"optimizer": {}}, "unknown key 'optimizer'"),
        ({"augmentation": {"copies": [[{"name": "echo"}]]}}, "unknown augmentation 'echo'"),
        (
            {"data": {"speaker_adaptive": True}, "model": {"model_type": "ser_whisper", "trainable_encoder_layers": 1}},
            "'model.trainable_encoder_layers': not with data.speaker_adaptive",
        ),
    ],
)
def test_bad_experiment_names_the_key(raw, message):
    with pytest.raises(ExperimentConfigError, match=message):
        experiment_from_dict(raw)


def test_overrides(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(TINY))
    exp = load_experiment(path, ["training.learning_rate=1e-3", "model.pooling=mean", "data.merge_calm=true"])
    assert exp.training.trainer_arguments()["learning_rate"] == 1e-3
    assert exp.model["pooling"] == "mean" and exp.data.merge_calm
    with pytest.raises(ExperimentConfigError, match="training.learning_rate': input should be a valid number"):
        load_experiment(path, ["training.learning_rate=fast"])
    with pytest.raises(ExperimentConfigError, match=r"experiment file .*exp not found \(a YAML file's path\); did you"):
        load_experiment(tmp_path / "exp")  # the name without its suffix
    with pytest.raises(ExperimentConfigError, match=r"experiment file .*other.yaml not found \(a YAML file's path\)$"):
        load_experiment(tmp_path / "other.yaml")
    assert cli_main(["train", "--config", str(path), "--data-dir", str(tmp_path), "--set", "training.bogus=1"]) == 2
    assert "unknown key 'training.bogus'" in capsys.readouterr().err


def test_override_appends_to_a_list(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(TINY))
    extra = "augmentation.copies+=[[{name: AddGaussianSNR, min_snr_db: 5, max_snr_db: 20, p: 1.0}]]"
    exp = load_experiment(path, [extra, "augmentation.copies+=[[{name: Clipping, gain_db: 6}]]"])
    names = [[t["name"] for t in copy] for copy in exp.augmentation.copies]
    assert names == [["Gain"], ["AddGaussianSNR"], ["Clipping"]]  # the file's copy first, then each append in order
    assert load_experiment(path, ["augmentation.copies=[]", extra]).augmentation.copies == [
        [{"name": "AddGaussianSNR", "min_snr_db": 5, "max_snr_db": 20, "p": 1.0}]
    ]
    with pytest.raises(ExperimentConfigError, match=r"training.learning_rate is 0.01, not a list to append to"):
        load_experiment(path, ["training.learning_rate+=[1]"])
    with pytest.raises(ExperimentConfigError, match=r"augmentation.copies\+=: expected a YAML list .* got 'Gain'"):
        load_experiment(path, ["augmentation.copies+=Gain"])


# ---------------------------------------------------------------------------------------------- training
def test_train_cli_writes_a_loadable_run(corpus_dir, tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    assert cli_main(["train", "--config", str(config), "--data-dir", str(corpus_dir), "--output-dir", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    for name in [
        "model.safetensors",
        "config.json",
        "preprocessor_config.json",
        "modeling_ser.py",
        "metrics.json",
        "class_report.md",
        "class_report.json",
        "confusion_matrix.png",
        "experiment.yaml",
        "train_log.jsonl",
    ]:
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    metrics = RunResult.load(out / "metrics.json")
    assert metrics.test.accuracy > 0.5  # 8 learnable classes: chance is 0.125
    assert not set(metrics.speakers["train"]) & set(metrics.speakers["test"])
    assert metrics.rows["train"] == 2 * 3 * 15  # 3 training speakers, original + 1 copy
    test_speakers = metrics.speakers["test"]
    assert sorted(metrics.speaker_predictions) == test_speakers
    assert sum(sum(c.values()) for c in metrics.speaker_predictions.values()) == metrics.rows["test"]
    config_json = json.loads((out / "config.json").read_text())
    assert "AutoModel" in config_json["auto_map"] and config_json["id2label"]["1"] == "calm"
    model = AutoModelForAudioClassification.from_pretrained(out)
    assert model.config.num_labels == 8
    scores = load_classifier(out)(str(next(corpus_dir.rglob("03-01-05-*.wav"))))
    assert scores[0]["label"] in model.config.label2id
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("eval_uar" in entry for entry in log) and any("loss" in entry for entry in log)
    assert yaml.safe_load((out / "experiment.yaml").read_text())["training"]["num_train_epochs"] == 6
    # temperature scaling fitted on the validation speakers, stored in the config, measured on both sides
    calibration = metrics.calibration
    assert calibration is not None and 0.05 < calibration.temperature < 20
    assert config_json["temperature"] == pytest.approx(calibration.temperature)
    # fitted there: the likelihood it maximises never gets worse (ECE may: it is not what the fit minimises)
    assert calibration.validation_nll <= calibration.validation_nll_raw + 1e-6
    assert calibration.test_coverage[0][:2] == (0.0, 1.0)  # threshold 0 answers every clip


def test_train_refuses_a_multi_fold_protocol(corpus_dir, tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    raw = json.loads(json.dumps(TINY))
    raw["protocol"] = {"name": "speaker-kfold", "folds": 3}
    config.write_text(yaml.safe_dump(raw))
    args = ["train", "--config", str(config), "--data-dir", str(corpus_dir), "--output-dir", str(tmp_path / "r")]
    assert cli_main(args) == 2
    assert "protocol 'speaker-kfold' has several folds" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_class_weights_and_early_stopping(corpus_dir, tmp_path):
    exp = tiny(
        training__class_weighted_loss=True,
        training__early_stopping_patience=1,
        training__num_train_epochs=30,
        training__learning_rate=1e-6,
    )
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    result = run_split(exp, splits, tmp_path / "run")
    assert result.epochs_run < 30  # stopped early: a tiny learning rate gives no validation gain
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    weights = config["class_weights"]
    assert weights[0] == pytest.approx(2 * weights[1])  # neutral has half as many clips as calm


def test_the_same_seed_trains_the_same_model_whatever_state_the_process_is_in(corpus_dir, tmp_path):
    """A run's seed decides the model's initial weights too, not only what the Trainer seeds (data order, dropout):
    the model is built before the Trainer exists. Before that was seeded, every process drew other initial weights
    (the bundled Whisper default rebuilt from its own recipe and seed came out another model: temperature 1.34
    against 1.11)."""
    import torch
    from safetensors.torch import load_file

    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    # on a GPU, cuDNN's and atomic-add kernels differ in the last bits from run to run unless transformers'
    # full_determinism picks deterministic ones (documented in the README); on the CPU runs are identical without it
    gpu = {"training__full_determinism": True} if torch.cuda.is_available() else {}
    weights = {}
    try:
        for name, process_seed, run_seed in [("a", 1, 0), ("b", 2, 0), ("c", 1, 1)]:
            torch.manual_seed(process_seed)  # a fresh process's generators start anywhere
            np.random.seed(process_seed)
            run_split(tiny(training__seed=run_seed, **gpu), splits, tmp_path / name)
            weights[name] = load_file(tmp_path / name / "model.safetensors")
    finally:
        torch.use_deterministic_algorithms(False)  # full_determinism sets it for the whole process
    assert weights["a"].keys() == weights["b"].keys()
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"])  # the seed does matter


def test_resume_from_checkpoint(corpus_dir, tmp_path, monkeypatch, caplog):
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    import hf_ser.training.run as training

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash after training")

    monkeypatch.setattr(training, "write_run", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_split(tiny(training__num_train_epochs=1), splits, tmp_path / "run")
    assert any((tmp_path / "run" / "checkpoints").glob("checkpoint-*"))
    monkeypatch.undo()
    seen = {}
    original = Trainer.train

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train", spy)
    result = run_split(tiny(training__num_train_epochs=2), splits, tmp_path / "run", resume=True)
    assert seen["resume_from_checkpoint"] is True and result.epochs_run == 2
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log if "eval_uar" in e] == [1, 2]  # epoch 1 came from the checkpoint
    with caplog.at_level(logging.WARNING, logger="hf_ser.training"):  # it trained from the start without a word
        run_split(tiny(training__num_train_epochs=1), splits, tmp_path / "fresh", resume=True)
    assert "resume: no checkpoint-* in" in caplog.text and "training from the start" in caplog.text


# --------------------------------------------------------------------------------------------- protocols
def test_speaker_kfold_reports_folds_and_mean_std(corpus_dir, tmp_path):
    exp = tiny(training__num_train_epochs=2)
    summary = train(exp, corpus_dir, tmp_path / "cv", protocol="speaker-kfold", folds=3).summary
    assert list(summary.folds) == ["fold_0", "fold_1", "fold_2"]
    accs = [f.accuracy for f in summary.folds.values()]
    assert summary.accuracy.mean == pytest.approx(np.mean(accs))
    assert summary.accuracy.std == pytest.approx(np.std(accs))
    assert np.sum(summary.confusion_matrix) == 6 * 15  # every utterance tested exactly once
    assert ProtocolResult.load(tmp_path / "cv" / "summary.json") == summary
    assert (tmp_path / "cv" / "summary.md").read_text().count("| fold_") == 3
    assert (tmp_path / "cv" / "fold_2" / "model.safetensors").is_file()


def test_ece_pools_over_folds_and_older_runs_get_their_clip_scores_back(corpus_dir, tmp_path):
    from hf_ser.confidence import pooled_ece
    from hf_ser.training.rescore import rescore_folds

    exp = tiny(training__num_train_epochs=2, protocol__name="speaker-kfold", protocol__folds=2)
    summary = train(exp, corpus_dir, tmp_path / "cv").summary
    runs = {f: RunResult.load(tmp_path / "cv" / f / "metrics.json") for f in ("fold_0", "fold_1")}
    for run in runs.values():  # each test clip once, its right/wrong flag agreeing with the run's accuracy
        assert len(run.calibration.test_confidence) == len(run.calibration.test_correct) == run.rows["test"]
        assert np.mean(run.calibration.test_correct) == pytest.approx(run.test.accuracy)
    pooled = summary.pooled_calibration()
    assert pooled.clips == np.sum(summary.confusion_matrix) == 6 * 15
    scores = [c for r in runs.values() for c in r.calibration.test_confidence]
    flags = [c for r in runs.values() for c in r.calibration.test_correct]
    assert pooled.ece == pytest.approx(pooled_ece(np.array(scores), np.array(flags))) and 0 < pooled.floor < 0.5
    # a run from before the scores were kept: re-scoring its saved model gives them back, checked and saved
    kept = runs["fold_1"].calibration
    old = runs["fold_1"].model_copy(deep=True)
    old.calibration.test_confidence, old.calibration.test_correct = [], []
    old.save(tmp_path / "cv" / "fold_1" / "metrics.json")
    assert list(rescore_folds(exp, corpus_dir, tmp_path / "cv")) == ["fold_1"]  # fold_0 had them
    back = RunResult.load(tmp_path / "cv" / "fold_1" / "metrics.json").calibration
    assert back.test_correct == kept.test_correct
    assert np.allclose(back.test_confidence, kept.test_confidence, atol=2e-4)
    old.test.accuracy += 0.2  # not what this model scores on these clips: refused, naming the run
    old.save(tmp_path / "cv" / "fold_1" / "metrics.json")
    with pytest.raises(ValueError, match="fold_1: re-scoring gives accuracy .* not the same model or clips"):
        rescore_folds(exp, corpus_dir, tmp_path / "cv")


def test_loso_utterance_and_paper_protocols(tmp_path):
    emodb = make_emodb(tmp_path / "emodb")
    exp = tiny(data__corpus="emodb", training__num_train_epochs=1, protocol__val_size=0.0)
    loso = train(exp, emodb, tmp_path / "loso", protocol="loso").summary
    assert list(loso.folds) == ["speaker_03", "speaker_08", "speaker_09", "speaker_10"]
    utt = train(exp, emodb, tmp_path / "utt", protocol="utterance")
    assert list(utt.summary.folds) == ["utterance"] and utt.run == RunResult.load(tmp_path / "utt" / "metrics.json")
    assert not (tmp_path / "utt" / "summary.json").exists()  # one split: the run folder is the whole record
    paper = train(exp, emodb, tmp_path / "paper", protocol="paper").summary
    metrics = RunResult.load(tmp_path / "paper" / "metrics.json")
    assert metrics.rows["train"] + metrics.rows["test"] == 2 * 28  # augmented first, then split by row
    assert metrics.rows["test"] == round(0.34 * 2 * 28)  # the config's protocol.test_size
    assert paper.protocol == "paper"


def test_cross_corpus_is_a_protocol_on_shared_labels(corpus_dir, tmp_path, capsys):
    emodb = make_emodb(tmp_path / "emodb")
    dirs = {"ravdess": corpus_dir, "emodb": emodb}
    exp = tiny(
        training__num_train_epochs=1,
        data__corpus=["ravdess", "emodb"],
        protocol__name="cross-corpus",
        protocol__test_corpus="emodb",
    )
    outcome = train(exp, dirs, tmp_path / "x")
    summary = outcome.summary
    assert summary.protocol == "cross-corpus" and list(summary.folds) == ["ravdess->emodb"]
    assert summary.labels == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert np.sum(summary.confusion_matrix) == 28 - 4  # all of EMO-DB but boredom, tested once
    assert outcome.run.rows["test"] == 24 and outcome.run.rows["validation"] > 0  # validation: RAVDESS actors
    loco = train(exp, dirs, tmp_path / "loco", protocol="leave-one-corpus-out").summary
    assert list(loco.folds) == ["emodb->ravdess", "ravdess->emodb"]
    ravdess = load_corpus("ravdess", corpus_dir)
    names = ravdess.features["emotion"].names
    shared = sum(names[e] in summary.labels for e in ravdess["emotion"])
    assert np.sum(loco.confusion_matrix) == 24 + shared  # every clip with a shared label tested once
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    args = ["evaluate", "--config", str(config), "--data-dir", str(corpus_dir), "--output-dir", str(tmp_path / "cli")]
    assert cli_main([*args, "--train-corpus", "ravdess", "--test-corpus", "emodb", "--test-data-dir", str(emodb)]) == 0
    shorthand = RunResult.load(tmp_path / "cli" / "metrics.json")  # the shorthand: the same protocol and split
    assert (shorthand.rows, shorthand.labels) == (outcome.run.rows, outcome.run.labels)
    with pytest.raises(ValueError, match=r"has 2 fold\(s\) here, indices 0 to 1 \(no fold \[2\]\)"):
        train(
            exp, dirs, tmp_path / "screen", protocol="leave-one-corpus-out", only_folds=[0, 2]
        )  # 2 was dropped silently
    with pytest.raises(ValueError, match=r"folds=3: protocol 'leave-one-corpus-out' makes its own folds; a number "):
        train(exp, dirs, tmp_path / "k", protocol="leave-one-corpus-out", folds=3)  # ran its 2 folds without a word
    assert cli_main([*args, "--protocol", "loso", "--folds", "3"]) == 2  # before any data is read
    assert "a number of folds is for ['speaker-kfold']" in capsys.readouterr().err
    assert cli_main([*args, "--test-data-dir", str(emodb)]) == 2  # it was ignored: the config's protocol ran
    assert "cross-corpus needs --train-corpus, --test-corpus and --test-data-dir" in capsys.readouterr().err
    shorthand_args = ["--train-corpus", "ravdess", "--test-corpus", "emodb", "--test-data-dir", str(emodb)]
    assert cli_main([*args, *shorthand_args, "--protocol", "loso"]) == 2  # it was ignored
    assert "--protocol loso: the cross-corpus shorthand runs protocol 'cross-corpus'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"needs at least two corpora in data.corpus; the data has \['ravdess'\]"):
        one_corpus = tiny(data__corpus=["ravdess"], data__merge_calm=True)
        train(one_corpus, corpus_dir, tmp_path / "one", "leave-one-corpus-out")
    with pytest.raises(ValueError, match="'protocol.test_corpus': 'tess' is not one of data.corpus"):
        tiny(data__corpus=["ravdess", "emodb"], protocol__name="cross-corpus", protocol__test_corpus="tess")


def test_training_only_corpora_add_clips_but_neither_labels_nor_test_folds(corpus_dir, tmp_path):
    from hf_ser.training.protocols import get_protocol
    from hf_ser.training.run import load_experiment_data

    dirs = {"ravdess": corpus_dir, "emodb": make_emodb(tmp_path / "emodb")}
    exp = tiny(data__corpus=["ravdess", "emodb"], protocol__name="leave-one-corpus-out")
    both = load_experiment_data(exp, dirs)
    assert both.features["emotion"].names == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    extra = tiny(
        data__corpus=["ravdess", "emodb"], protocol__name="leave-one-corpus-out", protocol__training_only=["ravdess"]
    )
    data = load_experiment_data(extra, dirs)
    assert data.features["emotion"].names == [*both.features["emotion"].names, "boredom"]  # all of EMO-DB's
    ravdess = load_corpus("ravdess", corpus_dir)
    kept = sum(ravdess.features["emotion"].names[e] not in ("calm", "surprised") for e in ravdess["emotion"])
    assert data["corpus"].count("ravdess") == kept  # its clips of EMO-DB's labels only
    folds = get_protocol("leave-one-corpus-out").folds(data, extra.protocol.settings(), None)
    assert [name for name, _ in folds] == ["ravdess->emodb"]  # never a test corpus
    cross = tiny(
        data__corpus=["ravdess", "emodb"],
        protocol__name="cross-corpus",
        protocol__test_corpus="ravdess",
        protocol__training_only=["ravdess"],
    )
    with pytest.raises(ValueError, match="test_corpus 'ravdess' is also in protocol.training_only"):
        get_protocol("cross-corpus").folds(data, cross.protocol.settings(), None)
    with pytest.raises(ValueError, match="protocol.training_only is for the cross-corpus protocols"):
        load_experiment_data(tiny(data__corpus=["ravdess", "emodb"], protocol__training_only=["ravdess"]), dirs)
    with pytest.raises(ValueError, match=r"protocol.training_only: \['tess'\] not in data.corpus"):
        bad = tiny(data__corpus=["ravdess", "emodb"], protocol__name="cross-corpus", protocol__training_only=["tess"])
        load_experiment_data(bad, dirs)


@pytest.mark.slow
def test_accelerate_two_cpu_processes(corpus_dir, tmp_path):
    config = tmp_path / "tiny.yaml"
    raw = json.loads(json.dumps(TINY))
    raw["training"]["num_train_epochs"] = 2
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "ddp"
    # CUDA_VISIBLE_DEVICES: two CPU processes on a GPU machine too (two ranks on one GPU are NCCL's invalid usage)
    env = {**os.environ, "HF_SER_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    # accelerate's "--cpu" starts one process; its torchrun launcher ("--multi_gpu") starts 2 CPU processes on a
    # machine without GPUs, and hf-ser's training then uses the gloo backend.
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    run = subprocess.run(
        [
            *launcher,
            "-m",
            "hf_ser.cli",
            "train",
            "--config",
            str(config),
            "--data-dir",
            str(corpus_dir),
            "--output-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "[rank 0] training finished" in run.stdout and "[rank 1] training finished" in run.stdout
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"]
    result = RunResult.load(out / "metrics.json")
    assert sum(result.rows.values()) == 6 * 15 + 3 * 15  # every utterance once, training ones twice (1 copy)
    assert result.epochs_run == 2


def test_last_training_batch_never_holds_a_single_item():
    from datasets import Array2D, ClassLabel, Dataset, Features

    from hf_ser.training.config import TrainingConfig
    from hf_ser.training.trainer import _training_items

    features = Features({"input_features": Array2D((None, 2), "float32"), "emotion": ClassLabel(num_classes=40)})
    rows = Dataset.from_dict(
        {"input_features": [np.ones((3, 2), np.float32)] * 33, "emotion": list(range(33))}, features
    )
    padded = _training_items(rows, "input_features", TrainingConfig(), 32)
    assert len(padded) == 34 and padded[33]["labels"] == padded[0]["labels"]
    assert len(_training_items(rows, "input_features", TrainingConfig(), 16)) == 34
    assert len(_training_items(rows, "input_features", TrainingConfig(), 10)) == 33  # 33 % 10 == 3: untouched


def test_mixup_blends_features_masks_and_targets():
    import torch

    from hf_ser.training.trainer import mix_batch

    torch.manual_seed(0)
    feats = torch.stack([torch.full((4, 3), float(i)) for i in range(6)])
    mask = torch.ones(6, 4, dtype=torch.int32)
    mask[0, 2:] = 0  # item 0 is shorter
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    mixed = mix_batch({"input_features": feats, "attention_mask": mask, "labels": labels}, 0.4, 3)
    targets = mixed["labels"]
    assert targets.shape == (6, 3) and torch.allclose(targets.sum(dim=1), torch.ones(6))
    # each row is lam * itself + (1 - lam) * a partner; recover lam from row 0 and its partner
    torch.manual_seed(0)
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(6)
    for i in range(6):
        assert torch.allclose(mixed["input_features"][i], lam * feats[i] + (1 - lam) * feats[perm[i]])
        expected = torch.zeros(3)
        expected[labels[i]] += lam
        expected[labels[perm[i]]] += 1 - lam
        assert torch.allclose(targets[i], expected)
    assert torch.equal(mixed["attention_mask"], torch.maximum(mask, mask[perm]))


def test_distillation_targets_batch_and_mix_as_probabilities():
    import torch
    from datasets import Array2D, Dataset, Features, Sequence, Value

    from hf_ser.data.collate import SOFT_LABELS, InMemoryFeatures, SERDataCollator
    from hf_ser.training.trainer import mix_batch

    soft = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    columns = {"input_features": Array2D((None, 2), "float32"), "emotion": Value("int64")}
    features = Features({**columns, SOFT_LABELS: Sequence(Value("float32"))})
    rows = Dataset.from_dict(
        {"input_features": [np.ones((3, 2), np.float32)] * 2, "emotion": [0, 2], SOFT_LABELS: soft.tolist()}, features
    )
    items = InMemoryFeatures(rows)
    batch = SERDataCollator()([items[0], items[1]])
    assert batch["labels"].dtype == torch.float32 and torch.allclose(batch["labels"], torch.from_numpy(soft))
    assert InMemoryFeatures(rows.remove_columns(SOFT_LABELS))[1]["labels"] == 2  # without them: the class id
    torch.manual_seed(0)
    mixed = mix_batch(batch, 0.4, 3)["labels"]
    torch.manual_seed(0)
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(2)
    assert torch.allclose(mixed, lam * batch["labels"] + (1 - lam) * batch["labels"][perm])  # soft targets mix too


def test_soft_targets_give_the_mixed_cross_entropy():
    import torch

    from hf_ser import SERConfig, SERForAudioClassification

    config = SERConfig(
        num_labels=3,
        num_mfcc=5,
        conv_channels=[8],
        conv_kernel_sizes=[3],
        conv_dilations=[1],
        conv_pool_sizes=[1],
        classifier_hidden_size=8,
    )
    model = SERForAudioClassification(config).eval()
    x = torch.randn(2, 10, 5)
    a = model(x, labels=torch.tensor([0, 2])).loss
    b = model(x, labels=torch.tensor([1, 1])).loss
    soft = torch.tensor([[0.3, 0.7, 0.0], [0.0, 0.7, 0.3]])
    assert torch.allclose(model(x, labels=soft).loss, 0.3 * a + 0.7 * b, atol=1e-6)


def test_mixup_trains_and_never_mixes_evaluation(corpus_dir, tmp_path, monkeypatch):
    from hf_ser.training import trainer as trainer_module

    calls = []
    original = trainer_module.mix_batch
    monkeypatch.setattr(trainer_module, "mix_batch", lambda *a: calls.append(1) or original(*a))
    exp = tiny(training__mixup_alpha=0.4)
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    result = run_split(exp, splits, tmp_path / "run")
    steps = json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"]
    assert steps == 6 and len(calls) > 0
    assert result.rows["validation"] > 0  # evaluation ran (on unmixed batches: its labels are ids)
    with pytest.raises(ExperimentConfigError, match="mixup_alpha"):
        tiny(training__mixup_alpha=-1.0)


def test_training_items_are_released_before_testing(corpus_dir, tmp_path, monkeypatch):
    """Every copy's features are in memory while training; testing and the corrupted suite must not keep them."""
    import gc
    import weakref

    from hf_ser.training import trainer as trainer_module

    made, refs, alive_at_predict = [], [], []
    items_of = trainer_module._training_items
    monkeypatch.setattr(trainer_module, "_training_items", lambda *a, **k: made.append(items_of(*a, **k)) or made[-1])
    train, predict = trainer_module.SERTrainer.train, trainer_module.SERTrainer.predict

    def watched_train(self, *args, **kwargs):
        refs.append(weakref.ref(made.pop()))  # the test lets go of them: only the trainer holds them now
        return train(self, *args, **kwargs)

    def watched_predict(self, *args, **kwargs):
        gc.collect()
        alive_at_predict.append(refs[0]() is not None)
        return predict(self, *args, **kwargs)

    monkeypatch.setattr(trainer_module.SERTrainer, "train", watched_train)
    monkeypatch.setattr(trainer_module.SERTrainer, "predict", watched_predict)
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    result = run_split(tiny(training__num_train_epochs=1), splits, tmp_path / "run")
    assert result.rows["test"] > 0 and alive_at_predict and not any(alive_at_predict)  # gone at every predict


def test_jensen_shannon_consistency_against_hand_computed_values():
    import torch

    from hf_ser.training.trainer import ClipBatches, jensen_shannon

    # clip 0: p = (0.8, 0.2) and (0.2, 0.8), mean (0.5, 0.5): KL of each = 0.8 ln 1.6 + 0.2 ln 0.4; clip 1 alone
    logits = torch.log(torch.tensor([[0.8, 0.2], [0.2, 0.8], [0.9, 0.1]]))
    expected = 0.8 * np.log(1.6) + 0.2 * np.log(0.4)
    assert float(jensen_shannon(logits, torch.tensor([0, 0, 1]))) == pytest.approx(expected, rel=1e-5)
    same = torch.log(torch.tensor([[0.7, 0.3], [0.7, 0.3]]))
    assert float(jensen_shannon(same, torch.tensor([4, 4]))) == pytest.approx(0.0, abs=1e-6)
    assert float(jensen_shannon(logits, torch.tensor([0, 1, 2]))) == 0.0  # no clip with a copy in the batch
    groups = [i // 4 for i in range(40)] + [10, 10]  # 10 clips of 4 rows, one of 2
    batches = list(ClipBatches(groups, batch_size=16))
    assert len(batches) == len(ClipBatches(groups, 16)) == 3  # 4 clips a batch (16 rows / 4), 11 clips
    assert sorted(i for b in batches for i in b) == list(range(42))  # every row once an epoch
    for batch in batches:  # whole clips only
        clips = {groups[i] for i in batch}
        assert sorted(batch) == sorted(i for i, g in enumerate(groups) if g in clips)


def test_divergence_from_original_against_hand_computed_values():
    import torch

    from hf_ser.training.trainer import divergence_from_original

    # clip 0: original (0.8, 0.2), copies (0.2, 0.8) and (0.5, 0.5); clip 1: an original alone
    logits = torch.log(torch.tensor([[0.8, 0.2], [0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])).requires_grad_()
    groups, originals = torch.tensor([0, 0, 0, 1]), torch.tensor([True, False, False, True])
    kl = [0.8 * np.log(0.8 / q) + 0.2 * np.log(0.2 / (1 - q)) for q in (0.2, 0.5)]
    value = divergence_from_original(logits, groups, originals)
    assert float(value.detach()) == pytest.approx(np.mean(kl), rel=1e-5)
    value.backward()
    assert torch.equal(logits.grad[0], torch.zeros(2)) and torch.equal(logits.grad[3], torch.zeros(2))  # no pull
    # d KL / d logit of a copy is (q - p): the copy (0.2, 0.8) is pushed towards (0.8, 0.2), over 2 copies
    torch.testing.assert_close(logits.grad[1], torch.tensor([-0.3, 0.3]))
    copies_only = torch.tensor([False, False, False, False])  # no original in the batch: nothing to pull towards
    assert float(divergence_from_original(logits.detach(), groups, copies_only)) == 0.0
    twice = torch.log(torch.tensor([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3]]))  # two originals: their mean anchors
    assert float(divergence_from_original(twice, torch.tensor([0, 0, 0]), torch.tensor([True, True, False]))) == (
        pytest.approx(0.0, abs=1e-6)
    )


def test_embedding_spread_against_hand_computed_values():
    import torch

    from hf_ser.training.trainer import embedding_spread

    # clip 0: (1, 0) and (0, 1), mean (0.5, 0.5): each at cos 1/sqrt(2) from it; clip 1 alone, not counted
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, -1.0]], requires_grad=True)
    value = embedding_spread(vectors, torch.tensor([0, 0, 1]))
    assert float(value.detach()) == pytest.approx(1 - 1 / np.sqrt(2), rel=1e-6)
    value.backward()
    assert torch.equal(vectors.grad[2], torch.zeros(2)) and vectors.grad[0].abs().sum() > 0
    scaled = torch.tensor([[1.0, 2.0], [3.0, 6.0]])  # one direction, two sizes: no spread
    assert float(embedding_spread(scaled, torch.tensor([5, 5]))) == pytest.approx(0.0, abs=1e-6)
    assert float(embedding_spread(vectors.detach(), torch.tensor([0, 1, 2]))) == 0.0


def test_embedding_consistency_pulls_the_pooled_vectors_of_a_clip_and_its_copies(corpus_dir, tmp_path, monkeypatch):
    from hf_ser.training import trainer as trainer_module

    seen = []
    original = trainer_module.embedding_spread
    monkeypatch.setattr(
        trainer_module, "embedding_spread", lambda v, g: seen.append((v.shape, g.tolist())) or original(v, g)
    )
    monkeypatch.setattr(trainer_module, "jensen_shannon", lambda *a: pytest.fail("no prediction consistency asked"))
    copies = [[{"name": "Gain", "min_gain_db": -3, "max_gain_db": -3, "p": 1.0}], [{"name": "TelephoneBand"}]]
    exp = tiny(training__embedding_consistency_weight=1.0, training__num_train_epochs=1, augmentation__copies=copies)
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    run_split(exp, splits, tmp_path / "run")
    assert len(seen) > 0
    from hf_ser import SERForAudioClassification

    pooled = SERForAudioClassification.from_pretrained(tmp_path / "run").ser.output_size
    for shape, groups in seen:  # the head's input (the pooled vector), whole clips in every batch
        assert tuple(shape) == (len(groups), pooled) and all(groups.count(g) == 3 for g in groups)
    # the term is added to the loss at its weight: a spread held at 5 adds 5 x 3 to every step's loss
    monkeypatch.setattr(trainer_module, "embedding_spread", lambda v, g: v.sum() * 0 + 5.0)
    held = tiny(training__embedding_consistency_weight=3.0, training__num_train_epochs=1, augmentation__copies=copies)
    run_split(held, splits, tmp_path / "held")
    log = (tmp_path / "held" / "train_log.jsonl").read_text().splitlines()
    losses = [json.loads(line).get("train_loss") for line in log]
    assert min(v for v in losses if v is not None) > 15.0
    with pytest.raises(ValueError, match="cannot go with mixup"):
        run_split(
            tiny(training__embedding_consistency_weight=1.0, training__mixup_alpha=0.2, augmentation__copies=copies),
            splits,
            tmp_path / "mixed",
        )


def test_consistency_training_batches_a_clip_with_its_copies(corpus_dir, tmp_path, monkeypatch):
    from hf_ser.training import trainer as trainer_module

    seen = []
    original = trainer_module.jensen_shannon
    monkeypatch.setattr(trainer_module, "jensen_shannon", lambda lg, g: seen.append(g.tolist()) or original(lg, g))
    copies = [[{"name": "Gain", "min_gain_db": -3, "max_gain_db": -3, "p": 1.0}], [{"name": "TelephoneBand"}]]
    exp = tiny(training__consistency_weight=1.0, training__num_train_epochs=2, augmentation__copies=copies)
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    result = run_split(exp, splits, tmp_path / "run")
    assert result.rows["train"] == 3 * len(splits["train"]) and len(seen) > 0
    for groups in seen:  # every batch: whole clips, each the original and its 2 copies
        assert all(groups.count(g) == 3 for g in groups)
    anchored = []
    original_fn = trainer_module.divergence_from_original
    monkeypatch.setattr(
        trainer_module,
        "divergence_from_original",
        lambda lg, g, o: anchored.append((g.tolist(), o.tolist())) or original_fn(lg, g, o),
    )
    exp = tiny(
        training__consistency_weight=1.0,
        training__consistency_target="clean",
        training__num_train_epochs=1,
        augmentation__copies=copies,
    )
    run_split(exp, splits, tmp_path / "clean")
    assert len(anchored) > 0
    for groups, originals in anchored:  # each clip: its original row (twice for a repeated row 0) and 2 copies
        for clip in set(groups):
            flags = [o for g, o in zip(groups, originals) if g == clip]
            assert sum(flags) >= 1 and flags.count(False) == 2
    with pytest.raises(ExperimentConfigError, match="consistency_target"):
        tiny(training__consistency_target="median")
    with pytest.raises(ValueError, match="needs augmentation.copies"):
        run_split(tiny(training__consistency_weight=1.0, augmentation__copies=[]), splits, tmp_path / "none")
    with pytest.raises(ValueError, match="cannot go with mixup"):
        run_split(tiny(training__consistency_weight=1.0, training__mixup_alpha=0.2), splits, tmp_path / "mixed")


def test_weight_averaging_keeps_the_mean_of_the_late_steps_weights():
    import torch
    from transformers import TrainerControl, TrainerState

    from hf_ser.training.weight_averaging import WeightAveraging

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    callback = WeightAveraging(0.5)
    state, control = TrainerState(max_steps=4), TrainerControl()
    assert callback.first_step(4) == 3  # steps 3 and 4 of 4
    for step in range(1, 5):
        with torch.no_grad():
            model[0].weight.fill_(float(step))
            model[1].running_mean.fill_(10.0 * step)
        state.global_step = step
        callback.on_step_end(None, state, control, model=model)
    callback.on_train_end(None, state, control, model=model)
    assert torch.allclose(model[0].weight, torch.full((2, 3), (3.0 + 4.0) / 2))
    assert torch.allclose(model[1].running_mean, torch.full((2,), (30.0 + 40.0) / 2))
    with pytest.raises(ValueError, match=r"average_weights_from must be in \[0, 1\)"):
        WeightAveraging(1.0)


def test_training_with_weight_averaging_ends_on_the_average(corpus_dir, tmp_path, monkeypatch):
    import torch

    from hf_ser.training import trainer as trainer_module
    from hf_ser.training.weight_averaging import WeightAveraging

    snapshots, final = [], {}

    def floats(model):
        return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    class Recording(WeightAveraging):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            super().on_step_end(args, state, control, model=model, **kwargs)
            if state.global_step >= self.first_step(state.max_steps):
                snapshots.append(floats(model))

        def on_train_end(self, args, state, control, model=None, **kwargs):
            super().on_train_end(args, state, control, model=model, **kwargs)
            final.update(floats(model))

    monkeypatch.setattr(trainer_module, "WeightAveraging", Recording)
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    exp = tiny(training__average_weights_from=0.5, training__num_train_epochs=4)
    run_split(exp, splits, tmp_path / "run")
    assert len(snapshots) >= 2 and final
    for name, value in final.items():
        assert torch.allclose(value, torch.stack([s[name] for s in snapshots]).mean(0), atol=1e-5), name
    moved = [n for n in final if not torch.allclose(snapshots[-1][n], final[n])]
    assert moved  # the average is not the last step's weights
    saved = AutoModelForAudioClassification.from_pretrained(tmp_path / "run")
    name = next(n for n in moved if n in saved.state_dict())
    assert torch.allclose(saved.state_dict()[name], final[name].cpu())  # what is saved and tested is the average
    with pytest.raises(ExperimentConfigError, match="average_weights_from"):
        tiny(training__average_weights_from=1.0)


def test_spectral_augmentations_refuse_mfcc_features(corpus_dir, tmp_path):
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    with pytest.raises(ValueError, match="frequency_warp needs features.feature_type=log_mel"):
        run_split(tiny(training__frequency_warp=0.1), splits, tmp_path / "run")
    with pytest.raises(ValueError, match="random_eq_db needs features.feature_type=log_mel"):
        run_split(tiny(training__random_eq_db=6.0), splits, tmp_path / "run")
    result = run_split(tiny(training__frequency_warp=0.1, features__feature_type="log_mel"), splits, tmp_path / "r2")
    assert result.epochs_run == 6


def test_balanced_sampling_weights_make_groups_equally_likely():
    from datasets import Dataset

    from hf_ser.training.trainer import sample_weights

    rows = Dataset.from_dict(
        {"emotion": [0, 0, 0, 1, 0, 1, 1, 1], "corpus": ["tess"] * 4 + ["emodb", "emodb", "emodb", "emodb"]}
    )
    assert sample_weights(rows, "none") is None
    by_class = sample_weights(rows, "class")
    assert by_class == [0.25] * 8  # 4 and 4
    by_pair = sample_weights(rows, "corpus_class")
    assert by_pair == [1 / 3, 1 / 3, 1 / 3, 1.0, 1.0, 1 / 3, 1 / 3, 1 / 3]
    groups = {}
    for w, c, e in zip(by_pair, rows["corpus"], rows["emotion"]):
        groups[(c, e)] = groups.get((c, e), 0) + w
    assert all(abs(v - 1.0) < 1e-9 for v in groups.values())  # each (corpus, class) has total weight 1
    with pytest.raises(ValueError, match="training.balance must be one of"):
        sample_weights(rows, "speaker")
    with pytest.raises(ExperimentConfigError, match="balance"):
        tiny(training__balance="speaker")
    assert tiny(training__balance="corpus_class").training.balance == "corpus_class"


def test_balanced_sampling_trains(corpus_dir, tmp_path, monkeypatch):
    import torch

    made = []
    original = torch.utils.data.WeightedRandomSampler

    class Recording(original):
        def __init__(self, weights, num_samples, *args, **kwargs):
            made.append((list(weights), num_samples))
            super().__init__(weights, num_samples, *args, **kwargs)

    monkeypatch.setattr(torch.utils.data, "WeightedRandomSampler", Recording)
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    result = run_split(tiny(training__balance="class"), splits, tmp_path / "run")
    assert result.epochs_run == 6
    weights, num_samples = made[0]
    assert num_samples == len(weights) >= result.rows["train"]
    # every class's rows (augmented copies included) share a total weight of 1
    assert abs(sum(weights[: result.rows["train"]]) - len(set(splits["train"]["emotion"]))) < 1e-6
    assert len(set(round(w, 9) for w in weights)) > 1  # the classes differ in size, so their weights differ


def test_speaker_adaptive_training_saves_an_extractor_that_must_be_adapted(corpus_dir, tmp_path):
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    run_split(tiny(data__speaker_adaptive=True), splits, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "preprocessor_config.json").read_text())
    assert saved["speaker_adaptive"] is True and saved["speaker_mean"] is None


def test_evaluation_features_trim_the_clips_the_model_answers_but_not_the_training_ones(
    corpus_dir, tmp_path, monkeypatch
):
    """``evaluation.features`` (an inference-only step): validation and test clips go through the extractor the model
    is saved with, the training clips (and their cache) through ``features`` alone."""
    import hf_ser.training.run as run_module

    seen = []
    original = run_module.model_inputs_of

    def recording(exp, splits, fe, model, cache_dir=None):
        seen.append((sorted(splits), fe.trim_db))
        return original(exp, splits, fe, model, cache_dir)

    monkeypatch.setattr(run_module, "model_inputs_of", recording)
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    result = run_split(tiny(evaluation__features={"trim_db": 45.0}), splits, tmp_path / "run")
    assert seen == [(["train"], None), (["test", "validation"], 45.0)]
    saved = json.loads((tmp_path / "run" / "preprocessor_config.json").read_text())
    assert (saved["trim_db"], saved["trim_margin"]) == (45.0, 0.5)
    assert result.rows["test"] == len(splits["test"])
    seen.clear()
    run_split(tiny(), splits, tmp_path / "plain")  # without the section: one extractor for every split, as before
    assert seen == [(["test", "train", "validation"], None)]
    with pytest.raises(ExperimentConfigError, match=r"evaluation.features.n_mfcc: only steps taken when answering"):
        tiny(evaluation__features={"n_mfcc": 20})
    with pytest.raises(ExperimentConfigError, match="evaluation.features"):
        tiny(evaluation__features={"trim_db": -3.0})


def test_speaker_and_corpus_adaptation_exclude_each_other():
    with pytest.raises(ExperimentConfigError, match="speaker_adaptive and data.corpus_adaptive exclude each other"):
        experiment_from_dict({"data": {"speaker_adaptive": True, "corpus_adaptive": True}})
    assert experiment_from_dict({"data": {"corpus_adaptive": True}}).data.adaptive_group == "corpus"


def test_the_test_split_is_also_scored_under_recording_conditions(corpus_dir, tmp_path):
    exp = tiny(**{"evaluation__corruptions": ["telephone", "babble SNR 10", "clipping +12 dB"]})
    summary = train(exp, corpus_dir, tmp_path / "run", protocol="speaker-kfold", folds=2).summary
    assert set(summary.corrupted) == {"telephone", "babble SNR 10", "clipping +12 dB"}
    fold = RunResult.load(tmp_path / "run" / "fold_0" / "metrics.json")
    for name, scores in fold.corrupted.items():
        assert 0 <= scores.uar <= 1 and 0 <= scores.agreement <= 1 and 0 <= scores.ece <= 1, name
    runs = [RunResult.load(p) for p in sorted((tmp_path / "run").glob("fold_*/metrics.json"))]
    mean = np.mean([r.corrupted["telephone"].uar for r in runs])
    assert summary.corrupted["telephone"].uar.mean == pytest.approx(mean)
    assert set(summary.corrupted_validation) == set(summary.corrupted)  # validation speakers too, for choosing
    with pytest.raises(ValueError, match="unknown corruption 'phone'"):
        tiny(**{"evaluation__corruptions": ["phone"]})


def test_a_model_trained_on_telephone_copies_answers_band_limited_clips(corpus_dir, tmp_path, speech, model_dir):
    """The "uncertain" rule flags band-limited clips as out of range, unless the model was trained on them."""
    import soundfile as sf

    from hf_ser.confidence import high_band_share
    from hf_ser.data.corruptions import TelephoneBand
    from hf_ser.inference import confidence_rule

    out = tmp_path / "run"
    train(tiny(augmentation__copies=[[{"name": "TelephoneBand", "p": 1.0}]]), corpus_dir, out)
    assert json.loads((out / "config.json").read_text())["trained_band_limited"] is True
    assert json.loads((model_dir / "config.json").read_text()).get("trained_band_limited", False) is False
    phone = TelephoneBand()(speech(2.0, 16000), 16000)
    assert high_band_share(phone, 16000) < 1e-6
    sure = {"angry": 0.9, "sad": 0.1}
    assert confidence_rule(load_classifier(out)).decide(sure, phone, 16000).label == "angry"
    assert "band-limited" in confidence_rule(load_classifier(model_dir)).decide(sure, phone, 16000).reason
    clipped = np.clip(10 * speech(2.0, 16000), -1, 1)  # the clipping check stays
    assert "clipped" in confidence_rule(load_classifier(out)).decide(sure, clipped, 16000).reason
    # the ONNX export carries it, and the CLI answers the phone-line clip (input checks only: threshold 0)
    assert cli_main(["export", "--onnx", str(tmp_path / "onnx"), "--model", str(out)]) == 0
    assert confidence_rule(load_classifier(tmp_path / "onnx", backend="onnx")).min_high_band == 0.0
    sf.write(tmp_path / "phone.wav", phone, 16000)
    for model, uncertain in ((out, False), (model_dir, True)):
        rows = tmp_path / f"rows_{uncertain}.jsonl"
        argv = ["predict", str(tmp_path / "phone.wav"), "--model", str(model), "--uncertain-below", "0"]
        assert cli_main([*argv, "--output", str(rows)]) == 0
        assert (json.loads(rows.read_text())["label"] == "uncertain") is uncertain


def test_adapt_per_condition_needs_an_adaptive_group():
    with pytest.raises(ExperimentConfigError, match="adapt_per_condition splits the adaptive groups"):
        experiment_from_dict({"data": {"adapt_per_condition": True}})


@pytest.mark.parametrize("per_condition", [True, False])
def test_adapting_per_condition_gives_each_copy_its_own_statistics(corpus_dir, per_condition):
    from datasets import DatasetDict

    from hf_ser.data.augment import augment
    from hf_ser.data.features import feature_column
    from hf_ser.training.inputs import model_inputs_of

    exp = tiny(data__speaker_adaptive=True, data__adapt_per_condition=per_condition)
    fe = exp.feature_extractor()
    splits = speaker_independent_split(load_corpus("ravdess", corpus_dir), 0.34, 0.17, seed=0)
    splits["train"] = augment(splits["train"], exp.augmentation.build(), sampling_rate=fe.sampling_rate)
    train = model_inputs_of(exp, DatasetDict(splits), fe, model=None)["train"]
    frames = dict(zip(train["utterance_id"], train[feature_column(fe)]))
    pairs = [(np.asarray(frames[u]), np.asarray(frames[f"{u}#aug1"])) for u in frames if "#" not in u]
    assert len(pairs) == len(train) // 2
    # the copy is the clip 3 dB quieter: an offset of every log-mel band, so of the first cepstral coefficient only
    offsets = [np.abs(clean[:, 0] - quiet[:, 0]).mean() for clean, quiet in pairs]
    for clean, quiet in pairs:
        np.testing.assert_allclose(clean[:, 1:], quiet[:, 1:], atol=1e-4)
    if per_condition:  # its own statistics take the offset away: the copy's inputs are the clip's
        assert max(offsets) < 1e-4
    else:  # one speaker's statistics for both: the offset stays, in units of the pooled standard deviation
        assert min(offsets) > 0.5
