"""The data layer: corpora → splits → augmentation → features → batches.

from hf_ser.data import load_corpus, speaker_folds, augment, extract_features, SERDataCollator
"""

from .augment import AugmentConfig, augment, build_transform
from .collate import InMemoryFeatures, SERDataCollator
from .corpora import CORPORA, load_corpora, load_corpus
from .features import FeatureReport, extract_features, feature_column
from .splits import (
    leave_one_speaker_out,
    mark_split,
    paper_split,
    speaker_folds,
    speaker_independent_split,
    speaker_keys,
    subset,
    utterance_split,
)

__all__ = [
    "CORPORA",
    "AugmentConfig",
    "FeatureReport",
    "InMemoryFeatures",
    "SERDataCollator",
    "augment",
    "build_transform",
    "extract_features",
    "feature_column",
    "leave_one_speaker_out",
    "load_corpora",
    "load_corpus",
    "mark_split",
    "paper_split",
    "speaker_folds",
    "speaker_independent_split",
    "speaker_keys",
    "subset",
    "utterance_split",
]
