"""The unified emotion set; each corpus module maps its own labels onto it (``Corpus.to_unified``).

| unified   | RAVDESS   | CREMA-D | TESS              | SAVEE     | EMO-DB        | EMOVO         |
|-----------|-----------|---------|-------------------|-----------|---------------|---------------|
| neutral   | neutral   | neutral | neutral           | neutral   | neutral (N)   | neutral (neu) |
| calm      | calm      |         |                   |           |               |               |
| happy     | happy     | happy   | happy             | happiness | happiness (F) | joy (gio)     |
| sad       | sad       | sad     | sad               | sadness   | sadness (T)   | sadness (tri) |
| angry     | angry     | anger   | angry             | anger     | anger (W)     | anger (rab)   |
| fearful   | fearful   | fear    | fear              | fear      | fear (A)      | fear (pau)    |
| disgust   | disgust   | disgust | disgust           | disgust   | disgust (E)   | disgust (dis) |
| surprised | surprised |         | pleasant_surprise | surprise  |               | surprise (sor)|
| boredom   |           |         |                   |           | boredom (L)   |               |

``merge_calm=True`` maps RAVDESS calm to neutral, as the paper did (7 classes).
"""

from __future__ import annotations

import logging

from datasets import ClassLabel, Dataset

from .base import CORPORA

UNIFIED_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", "boredom")
logger = logging.getLogger("hf_ser.corpora")


def _mapping(corpus: str) -> dict[str, str]:
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    return CORPORA[corpus].to_unified


def unified_label(corpus: str, label: str, merge_calm: bool = False) -> str:
    """The unified name of one corpus label."""
    try:
        unified = _mapping(corpus)[label]
    except KeyError as err:
        raise ValueError(f"no unified label for {corpus!r} label {label!r}") from err
    return "neutral" if merge_calm and unified == "calm" else unified


def unified_label_set(corpora: list[str], merge_calm: bool = False, common_only: bool = False) -> list[str]:
    """Unified labels present in the given corpora (all, or only those every corpus has), in canonical order."""
    sets = [{unified_label(c, lab, merge_calm) for lab in _mapping(c)} for c in corpora]
    chosen = set.intersection(*sets) if common_only else set.union(*sets)
    return [e for e in UNIFIED_EMOTIONS if e in chosen]


def unify_labels(dataset: Dataset, corpus: str, merge_calm: bool = False, labels: list[str] | None = None) -> Dataset:
    """Recast ``emotion`` to unified names; rows whose label is not in ``labels`` are dropped (and logged)."""
    names = dataset.features["emotion"].names
    mapping = [unified_label(corpus, n, merge_calm) for n in names]
    labels = labels or unified_label_set([corpus], merge_calm)
    target = ClassLabel(names=list(labels))
    keep = [i for i, e in enumerate(dataset["emotion"]) if mapping[e] in labels]
    if len(keep) < len(dataset):
        dropped = sorted({names[e] for e in dataset["emotion"] if mapping[e] not in labels})
        logger.warning(
            "%s: %d utterances with labels %s are outside the chosen label set and were left out",
            corpus,
            len(dataset) - len(keep),
            dropped,
        )
        dataset = dataset.select(keep)
    features = dataset.features.copy()
    features["emotion"] = target

    def recode(batch):
        return {"emotion": [target.str2int(mapping[e]) for e in batch["emotion"]]}

    return dataset.map(recode, batched=True, features=features, desc=f"unify {corpus} labels")
