"""Helpers shared by the command modules: experiment and release arguments, the model a command runs, data folders,
output folders."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="experiment YAML (see configs/)")
    p.add_argument("--data-dir", required=True, action="append", help="corpus folder (or corpus=folder, repeated)")
    p.add_argument("--output-dir", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. training.learning_rate=1e-3 (repeatable)",
    )


RESULTS_DIR = "docs/results"  # the project's result files, from which docs/RESULTS.md and the README are made


def experiments_file(text: str) -> str:
    """An argparse type (argparse applies it to the default too): the experiments registry must exist. Its default
    is relative to the checkout, so run elsewhere it was "[Errno 2] No such file or directory", without the fix."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(
            f"{text} not found: run from the hf-ser checkout (its configs/experiments.yaml), or pass --experiments PATH"
        )
    return text


def release_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--experiments", type=experiments_file, default="configs/experiments.yaml", help="the registered experiments"
    )
    p.add_argument("--corpora-dir", default="../shared/corpora", help="folder with one folder per corpus")
    p.add_argument("--results", default=RESULTS_DIR, help="where result files are read and written")
    p.add_argument("--only", default=None, help="comma-separated names")


def at_least(minimum: int, most: int | None = None):
    """An argparse type: a whole number >= ``minimum`` (and <= ``most``), refused at parse time (before a model
    loads) with the argument's name, where a 0 or a negative count was taken silently or failed deep inside the run."""
    wanted = f"a whole number >= {minimum}" + (f" and <= {most}" if most is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < minimum or (most is not None and value > most):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


def non_negative(text: str) -> float:
    """An argparse type: a finite number >= 0 (a share of a resource, such as GPUs per Ray actor, or a size)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < math.inf:  # also NaN; inf ended `cache prune` in an OverflowError traceback
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def repo_id(text: str) -> str:
    """An argparse type: a Hub model id as huggingface_hub validates it ("user/name" or "name"). `push --dry-run`
    and `card` took "my model" and wrote it into the card's snippets; only the upload itself refused it."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def score_threshold(text: str) -> float:
    """An argparse type: a calibrated-score threshold in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a score in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a score in [0, 1), got {value}")
    return value


def open_fraction(text: str) -> float:
    """An argparse type: a share strictly between 0 and 1 (a test split's size)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value}")
    return value


def fold_indices(text: str) -> list[int]:
    """An argparse type: comma-separated fold indices (``0,1``), each a whole number >= 0, none repeated."""
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fold indices such as 0,1, got {text!r}") from None
    if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
        raise argparse.ArgumentTypeError(f"expected distinct fold indices >= 0, got {text!r}")
    return indices


def data_dirs(values: list[str]):
    """``--data-dir PATH`` or, for several corpora, ``--data-dir ravdess=PATH --data-dir emodb=PATH``."""
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    pairs = [v.split("=", 1) for v in values]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("with several --data-dir, each must be corpus=path")
    return dict(pairs)


def experiment(args: argparse.Namespace):
    from ..training.config import load_experiment

    return load_experiment(args.config, args.set)


def output_dir(args: argparse.Namespace, suffix: str = "") -> Path:
    return Path(args.output_dir) if args.output_dir else Path("runs") / (Path(args.config).stem + suffix)


def model_args(p: argparse.ArgumentParser) -> None:
    """--model, --backend, --int8, --device: which trained model answers, and where (``predict``, ``score``)."""
    p.add_argument(
        "--model",
        default=None,
        help="model folder, ONNX export, bundled name or Hub id, for either backend "
        "(default: the accurate model where hf-ser[whisper] is installed, else the tiny one)",
    )
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="onnx: no torch at all")
    p.add_argument("--int8", action="store_true", help="with --backend onnx: the int8-quantised model")
    p.add_argument(
        "--device",
        default=None,
        help="where the model runs: cpu (default), cuda or cuda:N (the onnx backend: with onnxruntime-gpu)",
    )


def check_model_args(args: argparse.Namespace) -> None:
    """--int8 without --backend onnx had answered with the float model: refused before the model loads."""
    if args.int8 and args.backend != "onnx":
        raise ValueError("--int8 is the ONNX export's quantised model: add --backend onnx")


def loaded_classifier(args: argparse.Namespace):
    """(classify(waves) -> scores per wave, sampling rate, the classifier) for the :func:`model_args` given (and
    ``--adapt-on`` where the command has it), announced on stderr."""
    from ..inference import announce, load_classifier, resolve_model

    folder = resolve_model(args.model, args.backend)  # once: a Hub id is not looked up twice
    adapt_on = getattr(args, "adapt_on", None)
    clf = load_classifier(folder, args.device, adapt_on=adapt_on, backend=args.backend, int8=args.int8)
    announce(args.model, folder)
    return (lambda waves: clf(list(waves), top_k=None, batch_size=len(waves))), clf.sampling_rate, clf
