"""Release steps: result files in, RESULTS.md and the README block out; interrupted runs collected."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from hf_ser.publish.release import ExperimentRecord, ExperimentSpec, ReleasePlan, collect_partial, merge_records
from hf_ser.publish.results_page import update_readme, write_report
from hf_ser.training.results import Calibration, ClassScores, Hardware, RunResult, Scores, summarize


def _run(acc: float, speaker_counts: dict) -> RunResult:
    return RunResult(
        test=Scores(accuracy=acc, uar=acc - 0.01, macro_f1=acc - 0.02, weighted_f1=acc),
        per_class={"a": ClassScores(precision=1, recall=1, f1=1, support=1)},
        confusion_matrix=[[1]],
        labels=["a"],
        rows={"train": 10, "test": 5},
        speakers={"train": ["1"], "test": ["2"]},
        speaker_predictions=speaker_counts,
        parameters=100,
        epochs_run=3,
        train_seconds=3,
        seconds_per_epoch=1.0,
        wall_seconds=4,
        hardware=Hardware(device="cpu", cpu="x", torch_threads=2, torch="t"),
    )


def _calibration(**fields) -> Calibration:
    """A fold's calibration at temperature 1.5 (validation ECE 0.2 → 0.05) with the test figures given."""
    return Calibration(temperature=1.5, validation_ece_raw=0.2, validation_ece=0.05, **fields)


def write_plan(folder: Path, plan: str) -> Path:
    """``experiments.yaml`` (``plan``) in ``folder``, beside the 3-fold RAVDESS config ``exp.yaml`` it names."""
    (folder / "exp.yaml").write_text("data: {corpus: ravdess}\nprotocol: {name: speaker-kfold, folds: 3}\n")
    path = folder / "experiments.yaml"
    path.write_text(plan)
    return path


@pytest.fixture
def plan(tmp_path):
    return write_plan(
        tmp_path,
        "x-shared: &shared ['training.num_train_epochs=2']\n"
        "experiments:\n"
        "  a-head: {config: exp.yaml, set: [*shared, 'training.seed=3'], group: headline, what: the recipe}\n"
        "  b-try: {config: exp.yaml, group: search, what: a variant}\n"
        "  c-diff: {config: exp.yaml, group: search, what: one change, compare_with: a-head}\n",
    )


def test_plan_flattens_shared_overrides(plan):
    spec = ReleasePlan.load(plan).experiments["a-head"]
    assert spec.set == ["training.num_train_epochs=2", "training.seed=3"]


def test_report_and_readme_come_from_result_files(plan, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    spec = ReleasePlan.load(plan).experiments["a-head"]
    runs = {"fold_0": _run(0.6, {"2": {"a": 5}}), "fold_1": _run(0.7, {"3": {"a": 2, "b": 3}})}
    record = ExperimentRecord(
        name="a-head", spec=spec, seeds={"0": summarize("speaker-kfold", ["ravdess"], runs)}, wall_seconds=60
    )
    (results / "a-head.json").write_text(record.model_dump_json())
    changed = {"fold_0": _run(0.5, {}), "fold_1": _run(0.6, {})}
    other = ExperimentRecord(
        name="c-diff",
        spec=ReleasePlan.load(plan).experiments["c-diff"],
        seeds={"0": summarize("speaker-kfold", ["ravdess"], changed)},
        wall_seconds=60,
    )
    (results / "c-diff.json").write_text(other.model_dump_json())
    (results / "baseline-X-a.json").write_text(
        json.dumps(
            {
                "protocol": "a",
                "method": "SVM",
                "folds": {"f": {}},
                "accuracy": {"mean": 0.5, "std": 0.1},
                "uar": {"mean": 0.4, "std": 0.1},
            }
        )
    )
    ensemble = {"experiment": "a-head", "seeds": 2, "folds": 5, "single_accuracy": [62.1, 6.0]}
    ensemble |= {"single_uar": [61.0, 6.1], "ensemble_accuracy": [64.8, 5.5], "ensemble_uar": [63.9, 5.6]}
    (results / "ensemble.json").write_text(json.dumps({"bench": "ensemble", "results": [ensemble]}))
    report = write_report(plan, results, tmp_path / "RESULTS.md").read_text()
    assert "| a-head | 2 | 5 | 62.10 ± 6.00 | 61.00 ± 6.10 | 64.80 ± 5.50 | 63.90 ± 5.60 |" in report
    assert "| a-head | the recipe | 2 folds × 1 seed(s) | 65.00 ± 5.00 | 64.00 ± 5.00 |" in report
    assert "| a | SVM | 1 | 50.00 ± 10.00 | 40.00 ± 10.00 |" in report
    assert "| c-diff | 54.00 ± 5.00 | a-head | 64.00 ± 5.00 | -10.0 | 55.00 ± 5.00 | 65.00 ± 5.00 | 2 |" in report
    assert "56.11" not in report and "40.00 (1.60x)" not in report  # a-head names no baseline: no ratio
    assert "## Registered but not run\n\n- `b-try`: a variant\n" in report  # no result file
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nstale\n<!-- results:end -->\nafter\n")
    update_readme(readme, plan, results)
    text = readme.read_text()
    assert "stale" not in text and "65.00 ± 5.00" in text and text.endswith("after\n")
    assert record.seeds["0"].collapsed_speakers == ["2"]  # all 5 clips of speaker 2 got one label


def test_readme_targets_block_is_the_targets_table_of_the_checkpoints_robustness_experiments(tmp_path):
    from hf_ser.training.results import ConditionScores

    plan = write_plan(
        tmp_path,
        "experiments:\n"
        "  r-default: {config: exp.yaml, group: robustness}\n"
        "  r-other: {config: exp.yaml, group: robustness}\n"
        "checkpoints:\n"
        "  ser-x: {config: exp.yaml, corpora: [ravdess], robustness: r-default}\n",
    )
    results = tmp_path / "results"
    results.mkdir()
    for name, phone_uar in [("r-default", 0.62), ("r-other", 0.30)]:
        run = _run(0.71, {})  # clean UAR 0.70
        run.corrupted = {"telephone": ConditionScores(accuracy=0.6, uar=phone_uar, agreement=0.93, ece=0.1)}
        record = ExperimentRecord(
            name=name,
            spec=ReleasePlan.load(plan).experiments[name],
            seeds={"0": summarize("speaker-kfold", ["ravdess"], {"fold_0": run})},
            wall_seconds=1,
        )
        (results / f"{name}.json").write_text(record.model_dump_json())
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- targets:start -->\nstale\n<!-- targets:end -->\nb\n")
    update_readme(readme, plan, results)
    text = readme.read_text()
    assert text.startswith("a\n<!-- targets:start -->\n") and text.endswith("<!-- targets:end -->\nb\n")
    assert "| r-default | UAR lost, telephone | 8.0 points | ± 0.0 (8.0 to 8.0, 1 run) | ≤ 5 | missed by 3.0 |" in text
    assert "| r-default | agreement, telephone | 93.0 % |" in text and "| ≥ 90 % | met |" in text
    assert "stale" not in text and "r-other" not in text  # no checkpoint names it
    plan.write_text(plan.read_text().replace("robustness: r-default", "robustness: r-gone"))
    with pytest.raises(ValueError, match="checkpoint ser-x: robustness names 'r-gone', which is not an experiment"):
        ReleasePlan.load(plan)


def test_collect_partial_marks_a_screen_until_every_fold_ran(plan, tmp_path):
    out = tmp_path / "runs"
    for fold, acc in [("fold_0", 0.5), ("fold_2", 0.7)]:
        (out / "b-try" / "seed_0" / fold).mkdir(parents=True)
        _run(acc, {}).save(out / "b-try" / "seed_0" / fold / "metrics.json")
    (tmp_path / "results").mkdir()
    record = collect_partial(plan, "b-try", out, tmp_path / "results")
    assert record.only_folds == [0, 2] and record.metric("accuracy").mean == pytest.approx(0.6)
    (out / "b-try" / "seed_0" / "fold_1").mkdir()  # the screen's other folds, run later: the whole 3-fold protocol
    _run(0.9, {}).save(out / "b-try" / "seed_0" / "fold_1" / "metrics.json")
    record = collect_partial(plan, "b-try", out, tmp_path / "results")
    assert record.only_folds is None and record.metric("accuracy").mean == pytest.approx(0.7)
    assert ExperimentRecord.model_validate_json((tmp_path / "results" / "b-try.json").read_text()).only_folds is None
    with pytest.raises(ValueError, match="no finished fold"):
        collect_partial(plan, "a-head", out, tmp_path / "results")
    (out / "b-try" / "seed_1" / "fold_0").mkdir(parents=True)  # a second seed, one fold in: not the whole protocol
    _run(0.4, {}).save(out / "b-try" / "seed_1" / "fold_0" / "metrics.json")
    with pytest.raises(ValueError, match=r"seed 0: folds 0,1,2; seed 1: folds 0\)"):
        collect_partial(plan, "b-try", out, tmp_path / "results")
    record = collect_partial(plan, "b-try", out, tmp_path / "results", only_seeds=[0])
    assert list(record.seeds) == ["0"] and record.only_folds is None


def test_merge_adds_another_folders_seeds_only_to_the_same_run(plan, tmp_path, capsys):
    from hf_ser.cli import main

    spec = ReleasePlan.load(plan).experiments["b-try"]
    here, there = tmp_path / "results", tmp_path / "results-seed2"

    def write(folder: Path, seeds: dict[str, float], only_folds=None, record_spec=spec) -> None:
        folder.mkdir(exist_ok=True)
        runs = {s: summarize("speaker-kfold", ["ravdess"], {"fold_0": _run(acc, {})}) for s, acc in seeds.items()}
        record = ExperimentRecord(name="b-try", spec=record_spec, only_folds=only_folds, seeds=runs, wall_seconds=10)
        (folder / "b-try.json").write_text(record.model_dump_json())

    write(here, {"0": 0.5, "1": 0.6})
    write(there, {"2": 0.9})
    common = ["--experiments", str(plan), "--only", "b-try", "--results", str(here)]
    assert main(["results", "merge", *common]) == 2  # where from?
    assert "results merge needs --only NAME[,NAME…] and --from FOLDER" in capsys.readouterr().err
    assert main(["results", "merge", *common, "--from", str(there)]) == 0
    assert "b-try: seeds 0, 1, 2 (3 fold runs) in" in capsys.readouterr().out
    assert "b-try" in (here / "RESULTS.md").read_text()  # the merged folder's page, beside it
    merged = ExperimentRecord.model_validate_json((here / "b-try.json").read_text())
    assert list(merged.seeds) == ["0", "1", "2"] and merged.wall_seconds == 20
    assert merged.metric("accuracy").mean == pytest.approx((0.5 + 0.6 + 0.9) / 3)
    with pytest.raises(ValueError, match=r"results-seed2/b-try.json: seed\(s\) 2 are already in .*results/b-try.json"):
        merge_records(plan, "b-try", here, there)
    write(there, {"3": 0.9}, only_folds=[0])
    with pytest.raises(ValueError, match=r"fold\(s\) 0, where .* has every fold"):
        merge_records(plan, "b-try", here, there)
    write(there, {"3": 0.9}, record_spec=spec.model_copy(update={"set": ["training.num_train_epochs=7"]}))
    with pytest.raises(ValueError, match="run with another experiment than 'b-try' is now"):
        merge_records(plan, "b-try", here, there)
    with pytest.raises(ValueError, match="no result file for 'c-diff' to merge"):
        merge_records(plan, "c-diff", here, there)
    assert list(ExperimentRecord.model_validate_json((here / "b-try.json").read_text()).seeds) == ["0", "1", "2"]


def test_first_seed_is_the_lowest_seed_as_a_number():
    runs = {
        s: summarize("speaker-kfold", ["ravdess"], {"fold_0": _run(acc, {})})
        for s, acc in {"10": 0.9, "2": 0.4}.items()
    }
    record = ExperimentRecord(name="b", spec=ExperimentSpec(config="x.yaml"), seeds=runs, wall_seconds=1)
    assert record.first_seed.folds["fold_0"].accuracy == pytest.approx(0.4)  # seed 2, not "10" (first as text)


def test_adding_a_seed_keeps_the_seeds_run_with_the_same_resolved_experiment(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from hf_ser.publish import release

    trained: list[int] = []

    def fake_train(exp, dirs, folder, only_folds=None):
        trained.append(exp.training.seed)
        return SimpleNamespace(summary=summarize("speaker-kfold", ["ravdess"], {"fold_0": _run(0.5, {})}))

    monkeypatch.setattr(release, "train", fake_train)
    (tmp_path / "exp.yaml").write_text("data: {corpus: ravdess}\nprotocol: {name: speaker-kfold, folds: 3}\n")
    plan, results = tmp_path / "experiments.yaml", tmp_path / "results"
    noise = "{name: AddGaussianSNR, min_snr_db: 5, max_snr_db: 20, p: 1.0}"

    def register(*overrides: str) -> None:
        plan.write_text(yaml.safe_dump({"experiments": {"b": {"config": "exp.yaml", "set": list(overrides)}}}))

    def run(seeds: list[int]) -> ExperimentRecord:
        return release.run_experiment(plan, "b", tmp_path, tmp_path / "runs", results, seeds)

    register(f"augmentation.copies=[[{noise}], [{noise}]]")
    run([0])
    register(f"augmentation.copies=[[{noise}]]", f"augmentation.copies+=[[{noise}]]")  # spelt otherwise: the same
    assert list(run([0, 1]).seeds) == ["0", "1"] and trained == [0, 1]
    register(f"augmentation.copies=[[{noise}]]")  # one copy fewer: a new experiment, its seeds run again
    assert list(run([0]).seeds) == ["0"] and trained == [0, 1, 0]


def test_a_screens_next_folds_grow_its_record(plan, tmp_path, monkeypatch, caplog):
    from types import SimpleNamespace

    from hf_ser.publish import release

    accuracy = {0: 0.5, 1: 0.6, 2: 0.9}

    def fake_train(exp, dirs, folder, only_folds=None):  # writes its fold runs as train does
        runs = {f"fold_{k}": _run(accuracy[k], {}) for k in only_folds}
        for fold, run in runs.items():
            (folder / fold).mkdir(parents=True)
            run.save(folder / fold / "metrics.json")
        return SimpleNamespace(summary=summarize("speaker-kfold", ["ravdess"], runs))

    monkeypatch.setattr(release, "train", fake_train)
    out, results = tmp_path / "runs", tmp_path / "results"
    record = release.run_experiment(plan, "b-try", tmp_path, out, results, [0], only_folds=[0])
    assert record.only_folds == [0]
    record = release.run_experiment(plan, "b-try", tmp_path, out, results, [0], only_folds=[1])
    assert record.only_folds == [0, 1] and record.metric("accuracy").mean == pytest.approx(0.55)
    record = release.run_experiment(plan, "b-try", tmp_path, out, results, [0], only_folds=[2])
    assert record.only_folds is None and record.metric("accuracy").mean == pytest.approx(2.0 / 3)
    saved = ExperimentRecord.model_validate_json((results / "b-try.json").read_text())
    assert saved.only_folds is None and sorted(saved.seeds["0"].folds) == ["fold_0", "fold_1", "fold_2"]
    record = release.run_experiment(plan, "c-diff", tmp_path, out, results, [0], only_folds=[0])
    assert record.only_folds == [0]
    (out / "c-diff" / "seed_0" / "fold_0" / "metrics.json").unlink()  # the screen's runs gone: the new folds alone
    with caplog.at_level(logging.WARNING, logger="hf_ser.release"):
        assert release.run_experiment(plan, "c-diff", tmp_path, out, results, [0], only_folds=[1]).only_folds == [1]
    assert "c-diff.json: replacing its record of seed(s) 0 on fold(s) 0 with seed(s) 0 on fold(s) 1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hf_ser.release"):  # another seed on the record's own folds: kept
        record = release.run_experiment(plan, "c-diff", tmp_path, out, results, [0, 1], only_folds=[1])
    assert sorted(record.seeds) == ["0", "1"] and "replacing" not in caplog.text


def test_results_kept_elsewhere_get_their_own_report_and_leave_the_project_pages_alone(plan, tmp_path, monkeypatch):
    from hf_ser.cli import main

    monkeypatch.chdir(tmp_path)  # docs/RESULTS.md and README.md would be written here
    (tmp_path / "README.md").write_text("intro\n<!-- results:start -->\nkept\n<!-- results:end -->\n")
    screen = tmp_path / "screen"
    screen.mkdir()
    assert main(["results", "report", "--experiments", str(plan), "--results", str(screen)]) == 0
    assert "b-try" in (screen / "RESULTS.md").read_text()  # the screen's own page (b-try registered, not run)
    assert not (tmp_path / "docs").exists() and "kept" in (tmp_path / "README.md").read_text()
    (tmp_path / "docs" / "results").mkdir(parents=True)  # the project's own results: its page and README block
    assert main(["results", "report", "--experiments", str(plan)]) == 0
    assert "b-try" in (tmp_path / "docs" / "RESULTS.md").read_text()
    assert "kept" not in (tmp_path / "README.md").read_text()


def test_unregistered_names_are_refused_before_anything_runs(plan, tmp_path, monkeypatch, capsys):
    """`results run --only b-tri` was a KeyError traceback; `release cards --only ser-genral` did nothing and
    succeeded; `--only a-head,nope` ran a-head before failing on nope."""
    from hf_ser.cli import main
    from hf_ser.publish import release

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(release, "run_experiment", lambda *a, **k: pytest.fail("an experiment ran"))
    common = ["--experiments", str(plan), "--results", str(tmp_path / "r"), "--out", str(tmp_path / "o")]
    assert main(["results", "run", "--only", "b-tri", *common]) == 2
    assert "'b-tri' is not a registered experiment; did you mean b-try?" in capsys.readouterr().err
    assert main(["results", "collect", "--only", "a-head,zzzzzz", *common]) == 2
    assert "'zzzzzz' is not a registered experiment; registered: a-head, b-try, c-diff" in capsys.readouterr().err
    assert main(["release", "cards", "--only", "ser-genral", "--experiments", str(plan)]) == 2
    assert "'ser-genral' is not a registered checkpoint; none is registered" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the default registry is relative to the checkout
        main(["results", "report"])
    assert "configs/experiments.yaml not found: run from the hf-ser checkout" in capsys.readouterr().err


def test_per_class_rows_come_from_the_summed_confusion_matrix():
    from types import SimpleNamespace

    from hf_ser.publish.results_page import per_class_lines

    seed = SimpleNamespace(labels=["angry", "sad"], confusion_matrix=[[8, 2], [1, 9]])  # rows: truth
    other = SimpleNamespace(labels=["angry", "sad"], confusion_matrix=[[6, 4], [3, 7]])
    lines = per_class_lines(SimpleNamespace(name="x", seeds={"0": seed, "1": other}))
    # angry: recall 14/20, precision 14/18; sad: recall 16/20, precision 16/22; 10 test clips per seed
    assert "| angry | 70.0 | 77.8 | 10 |" in lines and "| sad | 80.0 | 72.7 | 10 |" in lines


def test_the_robustness_section_comes_from_corrupted_and_calibration_fields(tmp_path):
    from hf_ser.confidence import ece_floor_of_scores, ece_sampling_floor
    from hf_ser.publish.robustness_page import robustness_lines
    from hf_ser.training.results import ConditionScores, MeanStd

    (tmp_path / "exp.yaml").write_text("data: {corpus: ravdess}\n")
    (tmp_path / "experiments.yaml").write_text(
        "experiments:\n  r-model: {config: exp.yaml, group: robustness, what: scored under conditions}\n"
    )
    spec = ReleasePlan.load(tmp_path / "experiments.yaml").experiments["r-model"]
    runs = {}
    for fold, (phone_uar, agree) in enumerate([(0.50, 0.80), (0.60, 0.90)]):
        run = _run(0.71, {})  # clean UAR 0.70
        run.confusion_matrix = [[200]]  # 200 test clips in each fold
        run.corrupted = {
            "telephone": ConditionScores(accuracy=0.6, uar=phone_uar, agreement=agree, ece=0.10),
            "white SNR 10": ConditionScores(accuracy=0.7, uar=0.66, agreement=0.95, ece=0.05),
        }
        coverage = [(0.0, 1.0, 0.71), (0.4, 0.8, 0.80)]
        run.calibration = _calibration(
            test_ece_raw=0.15,
            test_ece=0.04,
            test_coverage=coverage,
            # fold 0: 200 clips at 0.8, 160 right (calibrated); fold 1: 200 at 0.6, 110 right (0.05 off)
            test_confidence=[0.8 - 0.2 * fold] * 200,
            test_correct=[True] * (160 - 50 * fold) + [False] * (40 + 50 * fold),
        )
        runs[f"fold_{fold}"] = run
    record = ExperimentRecord(
        name="r-model", spec=spec, seeds={"0": summarize("speaker-kfold", ["ravdess"], runs)}, wall_seconds=1
    )
    figure = tmp_path / "results" / "coverage.png"
    smile = {
        "method": "openSMILE eGeMAPSv02 functionals + StandardScaler + LinearSVC(C=1e-3)",
        "uar": {"mean": 0.5, "std": 0.0},
        "corrupted": {"telephone": {"uar": {"mean": 0.3, "std": 0}, "agreement": {"mean": 0.6, "std": 0}}},
    }
    text = "\n".join(robustness_lines({"r-model": record}, ["r-model"], figure, {"b": smile}))
    assert "| experiment | clean | telephone | white SNR 10 |" in text
    # mean over folds: 15 points lost, 85 % agree; the baseline is a row of its own, "–" where it was not scored
    assert "| r-model | 70.00 | 55.00 (-15.0) · 85 | 66.00 (-4.0) · 95 |" in text
    assert "| eGeMAPSv02 + SVM (baseline) | 50.00 | 30.00 (-20.0) · 60 | – |" in text
    assert (
        "| r-model | UAR lost, telephone | 15.0 points | ± 5.0 (10.0 to 20.0, 2 runs) | ≤ 5 | missed by 10.0 |"
    ) in text
    assert "| r-model | UAR lost, white SNR 10 | 4.0 points | ± 0.0 (4.0 to 4.0, 2 runs) | ≤ 8 | met |" in text
    assert (
        "| r-model | agreement, telephone | 85.0 % | ± 5.0 (80.0 to 90.0, 2 runs) | ≥ 90 % | missed by 5.0 |"
    ) in text
    assert (
        "| r-model | ECE, clean test | 0.040 | ± 0.000 | ≤ 0.05 | met (perfectly calibrated on these clips: 0."
    ) in text
    # per fold: from the fold's own clips' scores (all 0.8 in fold 0, all 0.6 in fold 1), as the cards do
    per_fold = MeanStd.of([ece_floor_of_scores([0.8] * 200), ece_floor_of_scores([0.6] * 200)])
    assert per_fold.mean != pytest.approx(ece_sampling_floor(coverage, 200), abs=1e-3)  # not the coverage curve's
    pooled = ece_floor_of_scores([0.8] * 200 + [0.6] * 200)  # both folds' 400 clips as one set
    assert (
        f"| r-model | 1.50 | 0.150 ± 0.000 | 0.040 ± 0.000 | {per_fold.mean:.3f} ± {per_fold.std:.3f} | "
        f"0.025 ({pooled:.3f}; 400 clips) | 0.100 | 0.050 | 80 % |" in text
    )  # pooled: half the clips 0.05 off their score
    assert (
        f"| r-model | ECE, clean test, all folds' 400 clips pooled | 0.025 | – | ≤ 0.05 | met (perfectly calibrated on "
        f"these clips: {pooled:.3f}) |" in text
    )
    assert "| telephone | 0.100 ± 0.000 |" in text and "| clean | 0.040 ± 0.000 |" in text  # ECE per condition
    assert figure.is_file() and "![coverage against accuracy](results/coverage.png)" in text
    # a screen on fold_1 only is compared with the full run on the validation actors of fold_1 alone
    for fold, run in runs.items():
        run.corrupted_validation = {
            "telephone": ConditionScores(accuracy=0, uar=0.4 + 0.1 * int(fold[-1]), agreement=0, ece=0)
        }
    screen = runs["fold_1"].model_copy(deep=True)
    screen.corrupted_validation = {"telephone": ConditionScores(accuracy=0, uar=0.8, agreement=0, ece=0)}
    full = ExperimentRecord(name="r-model", spec=spec, seeds={"0": summarize("k", ["ravdess"], runs)}, wall_seconds=1)
    aug = ExperimentRecord(
        name="r-aug",
        spec=spec.model_copy(update={"compare_with": "r-model"}),
        seeds={"0": summarize("k", ["ravdess"], {"fold_1": screen})},
        wall_seconds=1,
        only_folds=[1],
    )
    text = "\n".join(robustness_lines({"r-model": full, "r-aug": aug}, ["r-model", "r-aug"]))
    # beside a target, a screen's figure says it is one (the full record's does not)
    assert (
        "| r-aug | UAR lost, white SNR 10 | 4.0 points"
        " | ± 0.0 (4.0 to 4.0, 1 run) | ≤ 8 | met (screen: fold 1; 1 seed(s)) |"
    ) in text
    from hf_ser.publish.robustness_page import _spread

    assert _spread([-0.03, 1.0]) == "± 0.5 (0.0 to 1.0, 2 runs)" and _spread([]) == "–"  # no "-0.0"
    assert "| r-aug (screen: fold 1; 1 seed(s)) | 70.00 | 60.00 (-10.0) · 90 | 66.00 (-4.0) · 95 |" in text
    assert "| r-model | UAR lost, white SNR 10 | 4.0 points | ± 0.0 (4.0 to 4.0, 2 runs) | ≤ 8 | met |" in text
    assert "r-aug against r-model, on the validation actors of fold_1, seed 0 (the runs both have)" in text
    assert "| condition | r-model | r-aug | change | test lost, base | variant | agree, base | variant |" in text
    # on the test actors of fold_1 alone (clean 70, telephone 60 and 90 % agreement in both runs)
    assert "| telephone | 50.00 | 80.00 | +30.0 | 10.0 | 10.0 | 90.0 | 90.0 |" in text
    assert "| **mean over conditions** | 50.00 | 80.00 | +30.0 | 10.0 | 10.0 | 90.0 | 90.0 |" in text
    # a second seed of both on fold_1 is averaged in; a seed only one of them ran is not
    second = screen.model_copy(deep=True)
    second.corrupted_validation = {"telephone": ConditionScores(accuracy=0, uar=0.6, agreement=0, ece=0)}
    aug.seeds["1"] = summarize("k", ["ravdess"], {"fold_1": second})
    full.seeds["1"] = summarize("k", ["ravdess"], {"fold_1": runs["fold_1"]})  # validation 50 again
    aug.seeds["2"] = summarize("k", ["ravdess"], {"fold_1": screen})
    text = "\n".join(robustness_lines({"r-model": full, "r-aug": aug}, ["r-model", "r-aug"]))
    assert "on the validation actors of fold_1, seeds 0, 1 (the runs both have)" in text
    assert "| telephone | 50.00 | 70.00 | +20.0 |" in text
    # every variant of one recipe file side by side on the runs all of them have, lowest condition named
    assert "Every variant of `exp.yaml` on the validation actors of fold_1, seeds 0, 1" in text
    assert "| r-model | 50.00 | 50.00 (telephone) |" in text and "| r-aug | 70.00 | 70.00 (telephone) |" in text
    # the figure draws the bundled defaults' recipes where named (with every variant tried, its lines and legend
    # hid one another), else every experiment
    from unittest import mock

    import hf_ser.publish.robustness_page as page

    both = {"r-model": full, "r-aug": aug}
    with mock.patch.object(page, "_plot_coverage", wraps=page._plot_coverage) as plot:
        text = "\n".join(robustness_lines(both, ["r-model", "r-aug"], figure, plotted=["r-model", "absent"]))
        assert plot.call_args.args[1] == ["r-model"] and "for the bundled defaults' recipes" in text
        text = "\n".join(robustness_lines(both, ["r-model", "r-aug"], figure))
        assert plot.call_args.args[1] == ["r-model", "r-aug"] and "for every experiment above" in text


def test_target_table_shows_each_target_beside_its_variants():
    from types import SimpleNamespace

    from hf_ser.publish.results_page import target_lines

    def record(uar: float):
        return SimpleNamespace(metric=lambda name: SimpleNamespace(mean=uar, percent=lambda: f"{100 * uar:.2f}"))

    records = {
        "whisper-lococ-tess": record(0.487),
        "whisper-lococ-tess-corpus": record(0.601),
        "whisper-lococ-emodb": record(0.56),
        "general-lococ-tess": record(0.25),
    }
    lines = target_lines(records)
    assert "| task | Whisper-base family | tiny | target | | per-corpus standardised (adaptive, apart) |" in lines
    assert "| trained on RAVDESS + EMO-DB → TESS | 48.70 | 25.00 | 55 | missed by 6.3 | 60.10 |" in lines
    assert "| trained on RAVDESS + TESS → EMO-DB | 56.00 | – | 55 | met | – |" in lines
    assert not any("ASED" in line for line in lines)  # no ASED variant was run: no column for it


def test_cross_corpus_folds_pair_by_the_corpus_they_test():
    from types import SimpleNamespace

    from hf_ser.publish.results_page import _runs_of

    record = SimpleNamespace(seeds={"0": SimpleNamespace(folds={"ravdess+tess+ased->emodb": "x"})})
    other = SimpleNamespace(seeds={"0": SimpleNamespace(folds={"ravdess+tess->emodb": "y", "fold_0": "z"})})
    assert set(_runs_of(record)) & set(_runs_of(other)) == {("0", "emodb")}
    assert ("0", "fold_0") in _runs_of(other)  # other folds keep their names


def test_a_target_missed_by_less_than_the_table_shows_says_so():
    from hf_ser.publish.robustness_page import _missed_by

    assert _missed_by(0.0002, 3) == "missed by less than 0.001"  # ECE 0.0502 against 0.05: not "missed by 0.000"
    assert _missed_by(0.0123, 3) == "missed by 0.012"
    assert _missed_by(0.04, 1) == "missed by less than 0.1"
    assert _missed_by(1.96, 1) == "missed by 2.0"


def test_the_choice_check_sets_validation_changes_beside_test_changes_of_the_same_runs():
    from types import SimpleNamespace as NS

    import numpy as np

    from hf_ser.publish.variant_page import variant_lines

    def record(compare_with, val, test):  # one seed, a fold per value; two conditions each
        def scores(values):
            return {
                f"fold_{k}": {"a": NS(uar=v, agreement=1), "b": NS(uar=v + 0.02, agreement=1)}
                for k, v in enumerate(values)
            }

        clean = {f"fold_{k}": NS(uar=0.7) for k in range(len(val))}
        seed = NS(validation_conditions=scores(val), test_conditions=scores(test), folds=clean)
        return NS(spec=NS(compare_with=compare_with, config="x.yaml"), seeds={"0": seed})

    base = record(None, [0.5, 0.5, 0.5], [0.6, 0.6, 0.6])
    # against the base, validation +10, -5, +2 points; test +8, -4, -1 (the third run's signs differ)
    variant = record("base", [0.6, 0.45, 0.52], [0.68, 0.56, 0.59])
    text = "\n".join(variant_lines({"base": base, "variant": variant}, ["base", "variant"]))
    assert "| variant | base | 3 | +2.3 | +1.0 | 2 of 3 |" in text
    r = np.corrcoef([10, -5, 2], [8, -4, -1])[0, 1]
    assert f"Over all runs the two changes correlate at r = {r:.2f}, the same sign in 2 of 3 runs;" in text
    assert f"`x.yaml` alone at r = {r:.2f}, the same sign in 2 of 3 runs." in text  # one recipe file here
    # a fold the base did not run is left out of the pairing, and under 3 runs there is no check
    short = record("base", [0.6], [0.68])
    assert "Does choosing" not in "\n".join(variant_lines({"base": base, "variant": short}, ["base", "variant"]))


def test_a_variant_leads_only_where_its_runs_mean_is_beyond_their_spread():
    from types import SimpleNamespace as NS

    import numpy as np
    from scipy import stats

    from hf_ser.publish.variant_page import reading, runs_to_read, variant_lines

    # +1.2 over 7 runs with sd 2.3: t = 1.38 against 2.45 at 6 degrees of freedom, a tie
    assert reading([4.4, -0.2, 0.6, 1.6, 1.2, -2.5, 3.6]) == "a tie"
    # hand-computed: mean 2, sd 0.816 over 4 runs, SE 0.408, t = 4.9 > t(0.975, 3) = 3.18
    assert reading([1.0, 2.0, 3.0, 2.0]) == "leads" and reading([-1.0, -2.0, -3.0, -2.0]) == "behind"
    # mean 2, sd 1.414, SE 0.707, t = 2.83 < 3.18: a tie at 5 %, a lead at 10 % (t(0.95, 3) = 2.35)
    assert reading([1.0, 1.0, 4.0, 2.0]) == "a tie" and reading([1.0, 1.0, 4.0, 2.0], level=0.1) == "leads"
    assert reading([5.0]) == "one run: no reading"
    # the same reading as scipy's one-sample t-test on the changes, on 200 random sets of runs
    rng = np.random.default_rng(0)
    for _ in range(200):
        changes = list(rng.normal(rng.uniform(-3, 3), rng.uniform(0.5, 4), size=rng.integers(2, 12)))
        test = stats.ttest_1samp(changes, 0)
        expected = "a tie" if test.pvalue >= 0.05 else "leads" if test.statistic > 0 else "behind"
        assert reading(changes) == expected

    def record(compare_with, val):  # one seed, a fold per value, one condition
        seed = NS(validation_conditions={f"fold_{k}": {"a": NS(uar=v)} for k, v in enumerate(val)}, test_conditions={})
        seed.folds = {}
        return NS(spec=NS(compare_with=compare_with, config="x.yaml"), seeds={"0": seed})

    base, variant = record(None, [0.5, 0.5, 0.5, 0.5]), record("base", [0.51, 0.52, 0.53, 0.52])
    text = "\n".join(variant_lines({"base": base, "variant": variant}, ["base", "variant"]))
    assert "| variant | base | 4 | +2.0 ± 0.8 | 0.4 | 4 of 4 | leads | – |" in text
    # a tie: mean 2, sd 1.414 over 4 runs (t(0.975, 3) 3.182 x 1.414 / sqrt(4) = 2.25 > 2); the same mean and spread
    # read as a lead from 5 runs on (t(0.975, 4) 2.776 x 1.414 / sqrt(5) = 1.76 < 2)
    assert runs_to_read([1.0, 1.0, 4.0, 2.0]) == "about 5"
    assert runs_to_read([1.0, 2.0, 3.0, 2.0]) == "–"  # already a reading
    assert runs_to_read([0.1, -0.1, 0.2, -0.2]) == "over 100"


def test_readme_checkpoints_block_is_each_bundled_checkpoints_metrics(tmp_path):
    plan = write_plan(
        tmp_path,
        "experiments:\n  r: {config: exp.yaml}\ncheckpoints:\n"
        "  ser-x: {config: exp.yaml, corpora: [ravdess, emodb]}\n  ser-y: {config: exp.yaml, corpora: [tess]}\n",
    )
    results, checkpoints = tmp_path / "results", tmp_path / "checkpoints"
    results.mkdir()
    calibrated = _run(0.81, {})
    calibrated.calibration = _calibration(
        test_ece_raw=0.074, test_ece=0.049, test_coverage=[(0.0, 1.0, 0.8), (0.4, 0.9, 0.85), (0.5, 0.7, 0.9)]
    )
    for name, run in [("ser-x", calibrated), ("ser-y", _run(0.5, {}))]:
        (checkpoints / name).mkdir(parents=True)
        run.save(checkpoints / name / "metrics.json")
        (checkpoints / name / "model.safetensors").write_bytes(b"\0" * 3 * 2**19)  # 1.5 MB
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- checkpoints:start -->\nstale\n<!-- checkpoints:end -->\nb\n")
    update_readme(readme, plan, results, checkpoints)
    text = readme.read_text()
    assert (
        "| ser-x | ravdess + emodb | 1 | 1 | 81.0 / 80.0 | 0.074 → 0.049 (1.50) | 90 % (85.0 %) | — | 1.5 MB |" in text
    )
    assert "| ser-y | tess | 1 | 1 | 50.0 / 49.0 | not calibrated | — | — | 1.5 MB |" in text
    assert text.index("ser-x") < text.index("ser-y") and "stale" not in text and text.endswith("end -->\nb\n")
    (checkpoints / "ser-y" / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="checkpoint ser-y: no .*ser-y/metrics.json"):
        update_readme(readme, plan, results, checkpoints)


def test_the_readme_checkpoints_table_is_the_bundled_checkpoints():
    from hf_ser.inference import bundled_dir
    from hf_ser.publish.checkpoints_page import checkpoint_lines

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    table = readme.split("<!-- checkpoints:start -->\n\n")[1].split("\n\n<!-- checkpoints:end -->")[0]
    assert table == "\n".join(checkpoint_lines(ReleasePlan.load(root / "configs" / "experiments.yaml"), bundled_dir()))
