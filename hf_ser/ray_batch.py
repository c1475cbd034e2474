"""Whole archives on a Ray cluster: the batch run of :mod:`hf_ser.batch`, with Ray Data as the engine.

    from hf_ser.ray_batch import predict_with_ray
    summary = predict_with_ray(["/archive"], output="labels/", backend="onnx")   # sharded Parquet
    summary = predict_with_ray(ray.data.read_parquet("s3://…/paths.parquet"), output="labels.jsonl")

Files are listed on the driver and split into Ray blocks; actors of :class:`ClassifyBatch` load the model once
and then decode (input policy and Silero VAD included) and classify one batch of paths per call, on either
backend, or run the timeline (``segments=True``). Rows come back to the driver, which appends them to the output
as they arrive: a JSON-lines file, or a folder of Parquet shards. The row schema is the local batch run's
(:class:`hf_ser.batch.Prediction`: path, label, score, scores, seconds, error, reason), plus ``segments`` with
``segments=True``.

Nothing is lost: an unreadable file is a row with its reason; an actor that dies is restarted by Ray and its
batch retried; a rerun with the same output reads the paths already written and classifies only the rest, so no
row is duplicated (a JSON-lines file cut off mid-line by a killed driver is trimmed back to its last whole row).
Nothing is mixed either: the run's settings (model, backend, timeline or not, threshold, adaptation clips) are
recorded beside the output (:class:`RunSettings`), and a rerun with other settings is refused before it starts,
where it would have kept the earlier rows and added its own, two models' answers in one file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .batch import Prediction, audio_files, classified_rows, decode_clip, unclassified_row
from .input_policy import DEFAULT_POLICY

COLUMNS = ("path", "label", "score", "scores", "seconds", "error", "reason")

logger = logging.getLogger("hf_ser.ray_batch")


@dataclass(frozen=True)
class RunSettings:
    """What decides a run's rows, recorded beside its output so that a resumed run adds rows of the same kind."""

    model: str  # the resolved model folder
    backend: str
    int8: bool
    segments: bool
    uncertain_below: float | None
    adapt_on: tuple[str, ...] | None

    def differences(self, other: RunSettings) -> list[str]:
        return [
            f"{name} {getattr(other, name)!r} (now {getattr(self, name)!r})"
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(other, name)
        ]


@dataclass
class RayRunSummary:
    """What a Ray run did: rows written now, rows found from earlier runs, and failed files over the output
    (earlier rows included)."""

    output: Path
    written: int
    resumed: int
    failed: int

    @property
    def ok(self) -> bool:
        return self.failed == 0


class ClassifyBatch:
    """A Ray Data actor: loads the model once, then turns a batch of ``path`` rows into prediction rows."""

    def __init__(
        self,
        model: str | None,
        backend: str = "torch",
        int8: bool = False,
        segments: bool = False,
        threads: int = 1,
        device: str | int | None = None,
        adapt_on: list[str] | None = None,
        uncertain_below: float | None = None,
    ):
        if backend == "torch":
            import torch

            torch.set_num_threads(max(1, threads))
        from .inference import confidence_rule, load_classifier, longest_clip_seconds

        self.classifier = load_classifier(model, backend=backend, int8=int8, device=device, adapt_on=adapt_on)
        self.rate = self.classifier.sampling_rate
        self.rule = confidence_rule(self.classifier, uncertain_below)
        self.longest = longest_clip_seconds(self.classifier)
        self.segments = segments

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        rows = self._timelines(paths) if self.segments else list(self._predictions(paths))
        return _columns(rows, self.segments)

    def _predictions(self, paths: list[str]) -> Iterator[Prediction]:
        decoded = [decode_clip(p, self.rate, DEFAULT_POLICY, self.longest) for p in paths]
        speech = [clip for clip in decoded if clip.wave is not None]
        scored = iter(classified_rows(speech, self._classify, self.rate, self.rule) if speech else [])
        for clip in decoded:
            yield unclassified_row(clip) or next(scored)

    def _classify(self, waves: list[np.ndarray]) -> list[list[dict]]:
        return self.classifier(waves, top_k=None, batch_size=16)

    def _timelines(self, paths: list[str]) -> list[tuple[Prediction, list[dict] | None]]:
        from .timeline import segments

        rows = []
        for path in paths:
            try:
                result = segments(path, self.classifier, rule=self.rule)
            except ValueError as err:  # AudioDecodeError included
                rows.append((Prediction(path, error=str(err)), None))
                continue
            top = result.label
            score = max(result.summary.values(), default=None)
            row = Prediction(path, top, score, result.summary, result.duration, reason=result.reason)
            rows.append((row, result.to_dict()["segments"]))
        return rows


def _columns(rows: list, segments: bool) -> dict:
    """Rows as a column batch; ``scores`` (and ``segments``) as JSON text, so every block has one schema."""
    preds = [r[0] for r in rows] if segments else rows
    columns = {name: [getattr(p, name) for p in preds] for name in COLUMNS}
    columns["scores"] = [json.dumps(p.scores) for p in preds]
    if segments:
        columns["segments"] = [json.dumps(s) if s is not None else None for _, s in rows]
    return columns


class _Output:
    """The run's output: a ``.jsonl`` file, or a folder of Parquet shards; knows which paths it already holds."""

    def __init__(self, output: str | Path):
        self.path = Path(output)
        self.jsonl = self.path.suffix.lower() == ".jsonl"
        if not self.jsonl and self.path.suffix:
            raise ValueError(f"--output must be a .jsonl file or a folder (for Parquet shards), got {self.path}")

    @property
    def settings_file(self) -> Path:
        """Beside a JSON-lines file (``rows.jsonl.run.json``), or inside the Parquet folder (not a shard)."""
        return self.path.with_name(self.path.name + ".run.json") if self.jsonl else self.path / "_run.json"

    def claim(self, settings: RunSettings, has_rows: bool) -> None:
        """Record ``settings`` for an output without rows, or refuse a rerun whose settings differ from those
        recorded with the rows it holds."""
        if not has_rows:  # nothing to mix with (a settings file left without its rows is replaced)
            self.settings_file.parent.mkdir(parents=True, exist_ok=True)
            self.settings_file.write_text(json.dumps(asdict(settings), indent=2) + "\n")
            return
        if self.settings_file.is_file():
            stored = json.loads(self.settings_file.read_text())
            stored["adapt_on"] = tuple(stored["adapt_on"]) if stored.get("adapt_on") is not None else None
            differences = settings.differences(RunSettings(**stored))
            if differences:
                raise ValueError(
                    f"{self.path} holds the rows of a run with other settings: {'; '.join(differences)}. Resuming "
                    "would mix the two runs' answers; write to a new --output, or remove this one to start over"
                )
            return
        # rows from before settings were recorded: kept, as reruns always did
        logger.warning("%s: its run's settings were not recorded; its rows are kept as they are", self.path)

    def rows(self) -> list[dict]:
        if self.jsonl:
            return self._jsonl_rows() if self.path.is_file() else []
        import pyarrow.parquet as pq

        shards = sorted(self.path.glob("*.parquet")) if self.path.is_dir() else []
        return [row for shard in shards for row in pq.read_table(shard).to_pylist()]

    def _jsonl_rows(self) -> list[dict]:
        """Whole rows only: a last line cut off by a killed run is trimmed from the file."""
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) != len(data):
            self.path.write_bytes(whole)
        return [json.loads(line) for line in whole.decode().splitlines() if line.strip()]

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        if self.jsonl:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as handle:
                handle.write("".join(json.dumps(row) + "\n" for row in rows))
                handle.flush()
                os.fsync(handle.fileno())
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([_parquet_row(row) for row in rows], schema=_parquet_schema(rows))
        name = f"part-{uuid.uuid4().hex[:12]}.parquet"
        pq.write_table(table, self.path / f".{name}")
        (self.path / f".{name}").rename(self.path / name)  # a shard appears whole or not at all


def _parquet_schema(rows: list[dict]):
    import pyarrow as pa

    fields = [
        ("path", pa.string()),
        ("label", pa.string()),
        ("score", pa.float64()),
        ("scores", pa.map_(pa.string(), pa.float64())),
        ("seconds", pa.float64()),
        ("error", pa.string()),
        ("reason", pa.string()),
    ]
    if "segments" in rows[0]:
        fields.append(("segments", pa.string()))  # a list of {start, end, label, scores}, as JSON
    return pa.schema(fields)


def _parquet_row(row: dict) -> dict:
    row = dict(row, scores=list(row["scores"].items()))
    if row.get("segments") is not None:
        row["segments"] = json.dumps(row["segments"])
    return row


def _rows_of(batch: dict) -> list[dict]:
    """A column batch from the actors as the local run's rows (``scores`` a dict again)."""
    names = list(batch)
    rows = []
    for values in zip(*(batch[n] for n in names)):
        row = {n: (v.item() if hasattr(v, "item") else v) for n, v in zip(names, values)}
        row["scores"] = json.loads(row["scores"])
        if "segments" in row:
            row["segments"] = json.loads(row["segments"]) if row["segments"] else None
        rows.append({k: (None if _is_nan(v) else v) for k, v in row.items()})
    return rows


def _is_nan(value) -> bool:
    return isinstance(value, float) and value != value


def _start_ray(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    # no address: a local instance sized to this machine; "auto" or host:port: an existing cluster, this driver on
    # one of its nodes. Not ray://host:port: Ray Data does not run through Ray Client ("'Worker' object has no
    # attribute 'core_worker'", measured with Ray 2.60; ray-project/ray#42739), and without ray[client] Ray refuses it
    if address and address.startswith("ray://"):
        raise ValueError(
            f"--address {address}: Ray Data does not run through Ray Client (ray://). Run hf-ser predict on a node of "
            "the cluster with --address auto (for example through `ray job submit`)"
        )
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as err:  # was a traceback
        raise ValueError(
            f"--address {address}: no Ray cluster answered ({err}); start one (`ray start --head`), or leave --address "
            "out for a Ray instance on this machine"
        ) from err


def work_plan(files: int, batch_size: int, actors: int) -> tuple[int, int]:
    """(blocks, actors) for ``files`` paths: a block per batch, and at least one per actor while there are files
    for it, so a small archive still spreads over the pool; never more actors than blocks (an actor without a
    block only starts, loads the model and idles, and Ray warns that the pool cannot be used)."""
    blocks = min(files, max(actors, -(-files // batch_size)))
    return blocks, min(actors, blocks)


def predict_with_ray(
    inputs,
    output: str | Path,
    model: str | Path | None = None,
    backend: str = "torch",
    int8: bool = False,
    segments: bool = False,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 1,
    gpus_per_actor: float = 0,
    batch_size: int = 16,
    adapt_on: list[str] | None = None,
    uncertain_below: float | None = None,
    worker_class: type[ClassifyBatch] = ClassifyBatch,
) -> RayRunSummary:
    """Classify files and folders (or a ``ray.data.Dataset`` with a ``path`` column) on Ray; rows go to ``output``.

    ``actors``: the size of the actor pool (default: the cluster's CPUs divided by ``cpus_per_actor``, or its
    GPUs divided by ``gpus_per_actor``; for files and folders never more than their blocks, :func:`work_plan`);
    each actor runs torch with ``cpus_per_actor`` threads. Rows already in
    ``output`` are kept and their files skipped. ``worker_class``: a :class:`ClassifyBatch` subclass, to change
    the per-batch work.
    """
    for name, value in (("batch_size", batch_size), ("actors", actors)):  # the CLI checks its own flags at parsing
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"predict_with_ray: {name} must be a whole number >= 1, got {value!r}")
    for name, value in (("cpus_per_actor", cpus_per_actor), ("gpus_per_actor", gpus_per_actor)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:  # NaN too
            raise ValueError(f"predict_with_ray: {name} must be a finite number >= 0, got {value!r}")
    if not cpus_per_actor and not gpus_per_actor:
        raise ValueError("predict_with_ray: cpus_per_actor and gpus_per_actor are both 0: an actor needs one of them")
    import ray

    from .inference import resolve_model

    if backend == "onnx" and gpus_per_actor:  # the actors would take onnxruntime's CUDA provider: refused here,
        import onnxruntime as ort  # before Ray starts, where this onnxruntime has none (an actor's error retried)

        from .onnx.runtime import providers_for

        providers_for(0, ort.get_available_providers())
    out = _Output(output)
    earlier = out.rows()  # read once: the paths to skip and the failures already on record
    done = {row["path"] for row in earlier}
    resumed, failed = len(done), sum(1 for row in earlier if row.get("error"))
    folder = str(resolve_model(model, backend))  # resolved once on the driver (a Hub id is downloaded once)
    adapt = tuple(str(Path(p).resolve()) for p in adapt_on) if adapt_on else None
    out.claim(RunSettings(str(Path(folder).resolve()), backend, int8, segments, uncertain_below, adapt), bool(earlier))
    _start_ray(address)
    resources = ray.cluster_resources()
    for name, wanted in (("GPU", gpus_per_actor), ("CPU", cpus_per_actor)):
        if wanted and resources.get(name, 0) < wanted:  # an actor that can never be placed waits forever
            message = f"each actor asks for {wanted:g} {name}(s) and the Ray cluster has {resources.get(name, 0):g}" + (
                " (--gpus-per-actor: leave it out for CPU actors)" if name == "GPU" else ""
            )
            if address is None:  # this machine's own instance: it will not grow
                raise ValueError(message)
            logger.warning("%s; the run waits until the cluster's autoscaler adds them", message)
    if actors is None:
        by_gpu = int(resources.get("GPU", 0) // gpus_per_actor) if gpus_per_actor else None
        actors = max(1, by_gpu if by_gpu is not None else int(resources.get("CPU", 1) // cpus_per_actor))
    if isinstance(inputs, ray.data.Dataset):
        dataset = inputs.filter(lambda row: row["path"] not in done) if done else inputs
        written = 0
    else:
        files, missing = audio_files(inputs)
        missing = [asdict(p) for p in missing if p.path not in done]
        out.append(missing)
        written, failed = len(missing), failed + len(missing)
        todo = [f for f in files if f not in done]
        if not todo:
            return RayRunSummary(out.path, written, resumed, failed)
        blocks, actors = work_plan(len(todo), batch_size, actors)
        dataset = ray.data.from_items([{"path": f} for f in todo], override_num_blocks=blocks)
    rows = dataset.map_batches(
        worker_class,
        fn_constructor_kwargs={
            "model": folder,
            "backend": backend,
            "int8": int8,
            "segments": segments,
            "threads": int(max(1, cpus_per_actor)),
            "device": 0 if gpus_per_actor else None,
            "adapt_on": adapt_on,  # paths every node can read (a shared file system on a cluster)
            "uncertain_below": uncertain_below,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor or None,
    )  # Ray Data's actor pools restart a dead actor and retry its batch (max_restarts/max_task_retries -1)
    for batch in rows.iter_batches(batch_size=None, batch_format="numpy"):
        new = _rows_of(batch)
        out.append(new)
        written, failed = written + len(new), failed + sum(1 for row in new if row.get("error"))
    return RayRunSummary(out.path, written, resumed, failed)


def read_rows(output: str | Path) -> list[dict]:
    """The rows of a Ray run's output (JSON lines or a Parquet folder), ``scores`` as dicts, sorted by path."""
    rows = _Output(output).rows()
    for row in rows:
        if isinstance(row["scores"], list):  # Parquet's map type reads back as (key, value) pairs
            row["scores"] = dict(row["scores"])
        if isinstance(row.get("segments"), str):
            row["segments"] = json.loads(row["segments"])
    return sorted(rows, key=lambda row: row["path"])


def prediction_rows(predictions: Iterable[Prediction]) -> list[dict]:
    """Local batch-run predictions as rows comparable with :func:`read_rows`."""
    return sorted((asdict(p) for p in predictions), key=lambda row: row["path"])
