"""Model cards for run folders and checkpoints, rendered with ``huggingface_hub.ModelCard``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .reports import class_report_markdown

TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"

CORPUS_INFO = {
    "ravdess": {
        "title": "RAVDESS",
        "language": "en",
        "language_name": "North American English",
        "license": "cc-by-nc-sa-4.0",
        "license_text": "RAVDESS is CC BY-NC-SA 4.0 (Livingstone & Russo, 2018). A model trained on it inherits the "
        "non-commercial, share-alike terms: this model is CC BY-NC-SA 4.0 too and may not be used commercially.",
        "description": "the speech part of RAVDESS (24 professional actors, 12 female, 12 male; two neutral "
        "statements spoken in 8 emotions, normal and strong intensity).",
        "citation": "@article{livingstone2018ravdess,\n  title   = {The Ryerson Audio-Visual Database of "
        "Emotional Speech and Song (RAVDESS)},\n  author  = {Livingstone, Steven R. and Russo, Frank A.},\n"
        "  journal = {PLoS ONE},\n  volume  = {13},\n  number  = {5},\n  pages   = {e0196391},\n  year    = {2018}\n}",
    },
    "emodb": {
        "title": "EMO-DB",
        "language": "de",
        "language_name": "German",
        "license": "other",
        "license_text": "Berlin EMO-DB is distributed by its authors for research (Burkhardt et al., 2005); check "
        "its terms before any use beyond research. This model is released for research use only.",
        "description": "the Berlin Database of Emotional Speech (10 actors, 5 female, 5 male; 10 German sentences "
        "in 7 emotions). The copy used here is cut or zero-padded to 2.0 s per file.",
        "citation": "@inproceedings{burkhardt2005emodb,\n  title     = {A database of German emotional speech},\n"
        "  author    = {Burkhardt, Felix and Paeschke, Astrid and Rolfes, Miriam and Sendlmeier, Walter F. and "
        "Weiss, Benjamin},\n  booktitle = {Interspeech},\n  pages     = {1517--1520},\n  year      = {2005}\n}",
    },
}
GENERIC_CORPUS = {
    "title": "",
    "language": "en",
    "language_name": "the training corpus's language",
    "license": "other",
    "license_text": "See the licence of the training corpus; it carries over to the model.",
    "description": "",
    "citation": "",
}
PROTOCOLS = {
    "holdout": "Speaker-independent: the test speakers were never heard in training or validation.",
    "speaker-kfold": "Speaker-independent k-fold: each speaker is tested once, by a model that never heard them.",
    "loso": "Leave-one-speaker-out: each speaker is tested by a model trained on all the others.",
    "utterance": "Random by utterance: the same speakers appear in training and test (speaker-dependent; optimistic).",
    "paper": "The paper's protocol (augment first, random split over rows, test used for validation): leaky and "
    "speaker-dependent; for reproduction only.",
}


def _corpora(experiment: dict) -> list[str]:
    corpus = experiment.get("data", {}).get("corpus", "ravdess")
    return [corpus] if isinstance(corpus, str) else list(corpus)


def render_card(run_dir: str | Path, repo_id: str | None = None, model_name: str | None = None) -> ModelCard:
    """Build the model card of a run folder (``metrics.json``, ``experiment.yaml``, ``config.json``)."""
    run_dir = Path(run_dir)
    missing = [n for n in ("metrics.json", "experiment.yaml", "config.json") if not (run_dir / n).is_file()]
    if missing:
        raise ValueError(f"{run_dir}: not a run folder (missing {', '.join(missing)})")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    experiment = yaml.safe_load((run_dir / "experiment.yaml").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    extractor = json.loads((run_dir / "preprocessor_config.json").read_text())
    corpora = _corpora(experiment)
    infos = [CORPUS_INFO.get(c, {**GENERIC_CORPUS, "title": c}) for c in corpora]
    protocol = metrics.get("protocol", experiment.get("protocol", {}).get("name", "holdout"))
    if protocol in ("speaker-kfold", "loso") and "folds" not in metrics:
        protocol = "holdout"  # a single run folder is one speaker-independent split
    model_name = model_name or f"hf-ser {'+'.join(i['title'] for i in infos)} emotion classifier"
    repo_id = repo_id or f"<user>/{run_dir.name}"
    test = metrics["test"]
    dataset_name = " + ".join(i["title"] for i in infos)
    eval_results = [
        EvalResult(
            task_type="audio-classification",
            dataset_type=corpora[0],
            dataset_name=dataset_name,
            dataset_split=f"test ({protocol}, speaker-independent)" if protocol != "paper" else "test (paper)",
            metric_type=key,
            metric_name=name,
            metric_value=round(100 * test[key], 2),
        )
        for key, name in [
            ("accuracy", "Accuracy"),
            ("uar", "UAR (unweighted average recall)"),
            ("macro_f1", "Macro F1"),
        ]
    ]
    licence = infos[0]["license"] if len({i["license"] for i in infos}) == 1 else "other"
    card_data = ModelCardData(
        model_name=model_name,
        language=sorted({i["language"] for i in infos}),
        license=licence,
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=["speech-emotion-recognition", "audio-classification", "hf-ser", "mfcc", "custom_code"],
        datasets=corpora,
        metrics=["accuracy", "recall", "f1"],
        eval_results=eval_results,
    )
    speakers = metrics.get("speakers", {})
    n_speakers = len({s for part in speakers.values() for s in part}) or "a few"
    architecture = (
        f"{len(config['conv_channels'])} conv blocks {config['conv_channels']} (kernels {config['conv_kernel_sizes']}),"
        f" channel attention {'on' if config['use_channel_attention'] else 'off'}, spatial attention "
        f"{'on' if config['use_spatial_attention'] else 'off'}, {config['pooling']} pooling, dense "
        f"{config['classifier_hidden_size']}"
    )
    features = (
        f"{extractor['n_mfcc']} MFCC, n_fft {extractor['n_fft']}, hop {extractor['hop_length']}, "
        f"{extractor['n_mels']} mels, top_db {extractor['top_db']}, per-utterance normalisation "
        f"{'on' if extractor['do_normalize'] else 'off'}"
        + (f", {extractor['max_duration']} s from {extractor['offset']} s" if extractor.get("max_duration") else "")
    )
    rows = [
        ("accuracy", f"{100 * test['accuracy']:.2f}"),
        ("UAR", f"{100 * test['uar']:.2f}"),
        ("macro-F1", f"{100 * test['macro_f1']:.2f}"),
        ("weighted-F1", f"{100 * test['weighted_f1']:.2f}"),
    ]
    if speakers.get("test"):
        rows.append(("test speakers", ", ".join(speakers["test"])))
    if metrics.get("cross_validation"):
        cv = metrics["cross_validation"]
        for key, name in [("accuracy", "accuracy"), ("uar", "UAR"), ("macro_f1", "macro-F1")]:
            rows.append(
                (f"{cv['protocol']} {name} (mean ± std)", f"{100 * cv[key]['mean']:.2f} ± {100 * cv[key]['std']:.2f}")
            )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        repo_id=repo_id,
        pooling=config["pooling"],
        architecture=architecture,
        parameters=f"{metrics.get('parameters', 0):,}",
        labels=", ".join(metrics["labels"]),
        features=features,
        sampling_rate=extractor["sampling_rate"],
        language_name=" and ".join(i["language_name"] for i in infos),
        training_data="Trained on " + " ".join(i["description"] or i["title"] for i in infos),
        data_license=" ".join(i["license_text"] for i in infos),
        protocol=protocol,
        protocol_description=PROTOCOLS.get(protocol, ""),
        metric_rows=rows,
        class_report=class_report_markdown(metrics),
        n_speakers=n_speakers,
        extra_limitations="",
        corpus_citation="\n".join(i["citation"] for i in infos),
    )


def write_card(run_dir: str | Path, repo_id: str | None = None, model_name: str | None = None) -> Path:
    """Render and save ``README.md`` in the run folder; return its path."""
    card = render_card(run_dir, repo_id=repo_id, model_name=model_name)
    path = Path(run_dir) / "README.md"
    card.save(path)
    return path
