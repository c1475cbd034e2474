"""What every corpus loader shares: walking the folder, parsing names, reporting what was left out."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, Value

from ...files import folder_entries
from ...input_policy import DEFAULT_POLICY

logger = logging.getLogger("hf_ser.corpora")

GENDERS = ("female", "male", "unknown")
COMMON_COLUMNS = ("audio", "emotion", "speaker", "gender", "corpus", "utterance_id")


class CorpusLayoutError(ValueError):
    """The folder is missing, holds no file of the corpus, or (strict) holds files that match no rule."""


@dataclass
class Excluded:
    """A file recognised as belonging to the corpus but outside what we load (e.g. RAVDESS song)."""

    reason: str


@dataclass
class LoadReport:
    """Counts of what a loader took, excluded and could not match, with examples."""

    corpus: str
    data_dir: str
    loaded: int = 0
    excluded: Counter = field(default_factory=Counter)
    unmatched: list[str] = field(default_factory=list)
    non_audio: int = 0
    unreadable: list[str] = field(default_factory=list)  # links to missing files and the like, with audio suffixes

    def summary(self, examples: int = 5) -> str:
        parts = [f"{self.corpus}: {self.loaded} utterances from {self.data_dir}"]
        if self.excluded:
            parts.append("excluded " + ", ".join(f"{n} {why}" for why, n in sorted(self.excluded.items())))
        if self.unmatched:
            shown = ", ".join(self.unmatched[:examples])
            parts.append(f"{len(self.unmatched)} audio files match no naming rule (e.g. {shown})")
        if self.non_audio:
            parts.append(f"{self.non_audio} non-audio files ignored")
        if self.unreadable:
            shown = ", ".join(self.unreadable[:examples])
            parts.append(f"{len(self.unreadable)} not readable files (links to missing files?) left out (e.g. {shown})")
        return "; ".join(parts)

    def to_json(self) -> str:
        return json.dumps(
            {
                "corpus": self.corpus,
                "data_dir": self.data_dir,
                "loaded": self.loaded,
                "excluded": dict(self.excluded),
                "unmatched": self.unmatched,
                "non_audio": self.non_audio,
                "unreadable": self.unreadable,
            }
        )


@dataclass(frozen=True)
class CorpusFacts:
    """What a model card and the docs must say about a corpus: language, licence, citation, contents."""

    title: str
    language: str  # ISO 639-1 code, as the Hub's card metadata expects
    language_name: str
    license: str  # Hub licence id of the corpus; a model trained on it inherits the terms
    license_text: str
    description: str
    citation: str


CORPORA: dict[str, type[Corpus]] = {}


class Corpus:
    """One corpus: everything about it lives in its module (naming rule, labels, facts, unified mapping).

    Subclasses set the class attributes and implement :meth:`parse`, which turns one audio file into a
    row (a dict with at least ``emotion``, ``speaker``, ``gender``), an :class:`Excluded`, or ``None``
    when the name matches no rule. Defining a subclass with a ``name`` registers it in :data:`CORPORA`.
    """

    name: str = ""
    emotions: tuple[str, ...] = ()
    to_unified: dict[str, str] = {}  # own label -> unified label (hf_ser.data.corpora.taxonomy)
    facts: CorpusFacts
    layout: str = ""
    extra_features: dict[str, Value] = {}
    example_speakers: tuple[str, ...] = ()  # two valid speaker ids, for synthetic test corpora

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.name:
            return
        missing = set(cls.emotions) ^ set(cls.to_unified)
        if missing or not isinstance(getattr(cls, "facts", None), CorpusFacts):
            raise TypeError(f"corpus {cls.name!r}: needs facts and a unified mapping of every emotion ({missing})")
        CORPORA[cls.name] = cls

    def prepare(self, root: Path) -> None:
        """Read side files (speaker tables…) before parsing; default: nothing."""

    def parse(self, path: Path) -> dict | Excluded | None:
        raise NotImplementedError

    def example_file(self, emotion: str, speaker: str, index: int) -> str:
        """A relative path that follows the corpus's naming for this emotion and speaker: tests generate
        synthetic copies of every registered corpus from it, so a new corpus module is tested with no edit
        to the tests."""
        raise NotImplementedError

    def features(self) -> Features:
        return Features(
            {
                "audio": Value("string"),
                "emotion": ClassLabel(names=list(self.emotions)),
                "speaker": Value("string"),
                "gender": Value("string"),
                "corpus": Value("string"),
                "utterance_id": Value("string"),
                **self.extra_features,
            }
        )

    @staticmethod
    def _is_audio(path: Path) -> bool:
        return path.suffix.lower() in DEFAULT_POLICY.audio_suffixes  # the suffixes batch runs take

    def _other_naming(self, root: Path, paths: list[Path]) -> str:
        """Which registered corpus the files do follow, for the error (a TESS folder given to a RAVDESS config)."""
        counts = {}
        for name, cls in CORPORA.items():
            other = cls()
            other.prepare(root)  # what its parser reads first (CREMA-D's speaker table)
            counts[name] = sum(other.parse(p) is not None for p in paths)
        name = max(counts, key=counts.get, default=None)
        if name is None or name == self.name or counts[name] * 2 < len(paths):
            return ""
        return (
            f"; they follow {name}'s naming ({counts[name]} of the {len(paths)} looked at): load the folder as "
            f"{name} (an experiment's data.corpus: {name}, e.g. --set data.corpus={name})"
        )

    def load(self, data_dir: str | Path, strict: bool = False) -> tuple[Dataset, LoadReport]:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise CorpusLayoutError(f"{self.name}: data folder {root} does not exist; expected layout: {self.layout}")
        self.prepare(root)
        report = LoadReport(corpus=self.name, data_dir=str(root))
        rows = []
        files, unreadable = folder_entries(root)  # linked folders too (rglob left them out without a word)
        report.unreadable = [str(p.relative_to(root)) for p in unreadable if self._is_audio(p)]
        report.non_audio += sum(1 for p in unreadable if not self._is_audio(p))
        for path in files:
            if not self._is_audio(path):
                report.non_audio += 1
                continue
            parsed = self.parse(path)
            if parsed is None:
                report.unmatched.append(str(path.relative_to(root)))
            elif isinstance(parsed, Excluded):
                report.excluded[parsed.reason] += 1
            else:
                if parsed["gender"] not in GENDERS:
                    raise AssertionError(f"{self.name} parser gave gender {parsed['gender']!r} for {path}")
                relative = str(path.relative_to(root).with_suffix(""))  # "_relative": for ids below, not a column
                row = {"audio": str(path.resolve()), "corpus": self.name, "utterance_id": path.stem, **parsed}
                rows.append({**row, "_relative": relative})
        report.loaded = len(rows)
        if not rows:
            raise CorpusLayoutError(
                f"{self.name}: no file in {root} matches the corpus naming; expected layout: {self.layout}"
                + (f" (found e.g. {', '.join(report.unmatched[:3])})" if report.unmatched else "")
                + self._other_naming(root, [root / p for p in report.unmatched[:50]])
            )
        if strict and report.unmatched:
            raise CorpusLayoutError(f"strict=True and {report.summary()}")
        ids = Counter(r["utterance_id"] for r in rows)
        for row in rows:  # the same name in two folders (copies): keep ids unique, say where each came from
            if ids[row["utterance_id"]] > 1:
                row["utterance_id"] = row["_relative"]  # as reached from root (a linked folder's files resolve outside)
        (logger.warning if report.unmatched or report.unreadable else logger.info)(report.summary())
        columns = {key: [row[key] for row in rows] for key in self.features()}
        dataset = Dataset.from_dict(columns, features=self.features())
        dataset.info.description = report.summary(examples=20)
        return dataset, report


def match(pattern: str, text: str) -> re.Match | None:
    return re.fullmatch(pattern, text, flags=re.IGNORECASE)
