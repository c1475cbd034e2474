"""The Ray engine (hf_ser.ray_batch) on a local Ray instance: same rows as a local batch run, nothing lost when an
actor dies, resumable runs without duplicated rows, the CLI's --engine ray. No network: Ray runs on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ray = pytest.importorskip("ray")
pytest.importorskip("onnxruntime")

from hf_ser.batch import predict_files  # noqa: E402
from hf_ser.example import synthetic_speech  # noqa: E402
from hf_ser.inference import load_classifier  # noqa: E402
from hf_ser.ray_batch import ClassifyBatch, predict_with_ray, prediction_rows, read_rows, work_plan  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = "ser-general"  # bundled, with its ONNX export


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Eight speech-like clips of different lengths, digital silence, a file that is not audio and a short clip."""
    root = tmp_path_factory.mktemp("archive")
    (root / "sub").mkdir()
    for i in range(8):
        folder = root / "sub" if i % 2 else root
        sf.write(folder / f"clip{i}.wav", synthetic_speech(1.5 + 0.3 * i, pitch=110 + 15 * i, seed=i), 16000)
    sf.write(root / "silence.wav", np.zeros(32000, dtype=np.float32), 16000)
    sf.write(root / "short.wav", synthetic_speech(0.1), 16000)
    (root / "broken.wav").write_bytes(b"RIFF not really a wave file")
    return root


def _local_rows(archive: Path, backend: str) -> list[dict]:
    clf = load_classifier(MODEL, backend=backend)
    classify = lambda waves: clf(list(waves), top_k=None, batch_size=len(waves))  # noqa: E731
    return prediction_rows(predict_files([archive], classify, clf.sampling_rate, workers=1))


def _assert_same_rows(ray_rows: list[dict], local_rows: list[dict]) -> None:
    assert [r["path"] for r in ray_rows] == [r["path"] for r in local_rows]
    for got, want in zip(ray_rows, local_rows):
        assert (got["label"], got["error"], got["seconds"]) == (want["label"], want["error"], want["seconds"])
        assert got["scores"].keys() == want["scores"].keys()
        for label, score in want["scores"].items():
            assert got["scores"][label] == pytest.approx(score, abs=1e-5), (got["path"], label)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_ray_run_gives_the_rows_of_a_local_run(local_ray, archive, tmp_path, backend):
    summary = predict_with_ray([archive], tmp_path / "rows.jsonl", model=MODEL, backend=backend, batch_size=3)
    rows = read_rows(tmp_path / "rows.jsonl")
    _assert_same_rows(rows, _local_rows(archive, backend))
    assert len(rows) == 11 and summary.written == 11 and summary.resumed == 0
    errors = {Path(r["path"]).name: r["error"] for r in rows if r["error"]}
    assert set(errors) == {"broken.wav", "short.wav"} and "broken.wav" in errors["broken.wav"]
    assert summary.failed == 2 and not summary.ok
    assert next(r for r in rows if r["path"].endswith("silence.wav"))["label"] == "no speech"


class DiesOnce(ClassifyBatch):
    """Kills its own process (no exception: the worker is gone) on the first batch of the run."""

    marker = None

    def __call__(self, batch):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text("died")
            os._exit(1)
        return super().__call__(batch)


def test_an_actor_killed_mid_run_is_restarted_and_the_run_completes(local_ray, archive, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import the tests package
    marker = tmp_path / "died"
    dies = type("DiesOnceHere", (DiesOnce,), {"marker": str(marker)})
    summary = predict_with_ray(
        [archive], tmp_path / "rows", model=MODEL, backend="onnx", batch_size=4, worker_class=dies
    )
    assert marker.read_text() == "died"  # an actor did die
    rows = read_rows(tmp_path / "rows")  # Parquet shards
    _assert_same_rows(rows, _local_rows(archive, "onnx"))
    assert summary.written == 11


def test_a_clip_the_model_refuses_costs_only_its_own_ray_row(archive):
    """The actor's batch goes through the same clip-by-clip retry as a local run (no Ray cluster needed to call it)."""
    actor = ClassifyBatch(MODEL, backend="onnx")
    model = actor.classifier

    def refuses_clip3(waves, **kwargs):
        if any(len(w) == int(16000 * 2.4) for w in waves):  # clip3.wav: 1.5 + 0.3 * 3 s
            raise ValueError("not this one")
        return model(waves, **kwargs)

    actor.classifier = refuses_clip3
    paths = sorted(str(p) for p in archive.rglob("clip*.wav"))
    rows = {Path(r["path"]).name: r for r in prediction_rows(actor._predictions(paths))}
    assert rows["clip3.wav"]["error"] == f"{archive / 'sub' / 'clip3.wav'}: not this one"
    assert all(rows[f"clip{i}.wav"]["label"] and not rows[f"clip{i}.wav"]["error"] for i in range(8) if i != 3)


def test_a_rerun_skips_what_is_done_and_duplicates_nothing(local_ray, archive, tmp_path):
    local = _local_rows(archive, "onnx")
    output = tmp_path / "rows.jsonl"
    done = [r for r in local if "clip" in r["path"]][:5]
    # an interrupted run: five rows written, then a row cut off mid-line
    output.write_text("".join(json.dumps(r) + "\n" for r in done) + '{"path": "/cut/off')
    summary = predict_with_ray([archive], output, model=MODEL, backend="onnx", batch_size=4)
    assert (summary.resumed, summary.written) == (5, 6)
    rows = read_rows(output)
    assert len({r["path"] for r in rows}) == len(rows) == 11
    _assert_same_rows(rows, local)
    again = predict_with_ray([archive], output, model=MODEL, backend="onnx")
    assert (again.resumed, again.written) == (11, 0) and len(read_rows(output)) == 11


def test_the_work_plan_spreads_a_small_archive_over_the_pool_and_starts_no_idle_actor():
    assert work_plan(100, 16, 2) == (7, 2)  # a block per batch: ceil(100 / 16)
    assert work_plan(4, 16, 2) == (2, 2)  # one batch's files, split so both actors work (was 1 block, 2 actors)
    assert work_plan(1, 16, 2) == (1, 1)  # one file: one actor, not a second that only loads the model
    assert work_plan(3, 1, 8) == (3, 3)


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"batch_size": 0}, r"batch_size must be a whole number >= 1, got 0"),
        ({"actors": 2.5}, r"actors must be a whole number >= 1, got 2.5"),
        ({"cpus_per_actor": -1}, r"cpus_per_actor must be a finite number >= 0, got -1"),
        ({"gpus_per_actor": float("nan")}, r"gpus_per_actor must be a finite number >= 0, got nan"),
        ({"cpus_per_actor": float("inf")}, r"cpus_per_actor must be a finite number >= 0, got inf"),
        ({"cpus_per_actor": 0}, r"cpus_per_actor and gpus_per_actor are both 0"),
    ],
)
def test_bad_pool_settings_are_refused_by_name_before_ray_starts(archive, tmp_path, setting, message):
    """From Python (the CLI checks its own flags): batch_size 0 was a ZeroDivisionError in the block count."""
    with pytest.raises(ValueError, match=message):
        predict_with_ray([archive], tmp_path / "rows.jsonl", model=MODEL, backend="onnx", **setting)
    assert not (tmp_path / "rows.jsonl").exists()


# Ray warned "the minimum number of concurrent actors ... is set to 2, but the operator only received 1 input(s)"
# on this test's four files (one block for a pool of two): each actor now has a block.
@pytest.mark.filterwarnings("error:The minimum number of concurrent actors")
def test_a_rerun_with_other_settings_is_refused_rather_than_mixed_in(local_ray, archive, tmp_path):
    """A rerun into the same output with another model or threshold kept the earlier rows and added its own
    ("0 rows written (4 from earlier runs kept)" with a different --model): two runs' answers in one file."""
    for output in (tmp_path / "rows.jsonl", tmp_path / "shards"):
        first = predict_with_ray([archive / "sub"], output, model=MODEL, backend="onnx")
        assert first.written > 0
        with pytest.raises(ValueError, match=r"uncertain_below None \(now 0.9\).*write to a new --output"):
            predict_with_ray([archive], output, model=MODEL, backend="onnx", uncertain_below=0.9)
        with pytest.raises(ValueError, match=r"int8 False \(now True\)"):
            predict_with_ray([archive], output, model=MODEL, backend="onnx", int8=True)
        assert len(read_rows(output)) == first.written  # nothing added
        same = predict_with_ray([archive], output, model=MODEL, backend="onnx")  # the same settings resume
        assert same.resumed == first.written and len(read_rows(output)) == 11


def test_a_ray_dataset_of_paths_is_accepted_and_segments_run_per_file(local_ray, archive, tmp_path):
    paths = sorted(str(p) for p in archive.rglob("clip*.wav"))[:3]
    out = tmp_path / "timeline.jsonl"
    predict_with_ray(ray.data.from_items([{"path": p} for p in paths]), out, model=MODEL, backend="onnx", segments=True)
    rows = read_rows(out)
    assert [r["path"] for r in rows] == paths
    for row in rows:
        assert row["segments"] and row["segments"][-1]["end"] == pytest.approx(row["seconds"], abs=0.05)
        assert row["label"] == max(row["scores"], key=row["scores"].get)


def test_actors_the_cluster_cannot_place_are_refused_not_waited_for(local_ray, archive, tmp_path):
    """--gpus-per-actor 1 on a machine without a GPU waited forever ("pending: 1 CPU, 1 GPU")."""
    with pytest.raises(ValueError, match=r"each actor asks for 1 GPU\(s\) and the Ray cluster has 0"):
        predict_with_ray([archive], tmp_path / "rows.jsonl", model=MODEL, backend="torch", gpus_per_actor=1)
    with pytest.raises(ValueError, match=r"each actor asks for 64 CPU\(s\) and the Ray cluster has 2"):
        predict_with_ray([archive], tmp_path / "rows.jsonl", model=MODEL, backend="onnx", cpus_per_actor=64)
    assert not read_rows(tmp_path / "rows.jsonl")  # refused before any row


def test_onnx_actors_on_gpus_need_onnxruntime_gpu(archive, tmp_path):
    """ONNX actors given a GPU ran on the CPU (the runtime ignored the device) while holding the GPU; without
    onnxruntime's CUDA provider the run is refused before Ray starts."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(ValueError, match="device=0: this onnxruntime runs on .* a GPU needs onnxruntime-gpu"):
        predict_with_ray([archive], tmp_path / "rows.jsonl", model=MODEL, backend="onnx", gpus_per_actor=1)
    assert not (tmp_path / "rows.jsonl").exists()


def test_a_cluster_that_does_not_answer_is_a_plain_error_and_ray_client_is_refused(monkeypatch):
    """--address auto with no cluster running was Ray's ConnectionError traceback; a ray:// address (the README's
    example) failed inside Ray Data, which does not run through Ray Client."""
    from hf_ser import ray_batch

    def no_cluster(**kwargs):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(ValueError, match=r"--address auto: no Ray cluster answered .*`ray start --head`"):
        ray_batch._start_ray("auto")
    with pytest.raises(ValueError, match=r"Ray Data does not run through Ray Client .* with --address auto"):
        ray_batch._start_ray("ray://head:10001")


def test_the_output_must_be_jsonl_or_a_folder(tmp_path):
    with pytest.raises(ValueError, match=r"\.jsonl file or a folder"):
        predict_with_ray([tmp_path], tmp_path / "rows.csv", model=MODEL)


def test_predict_engine_ray_from_the_command_line(archive, tmp_path):
    out = tmp_path / "rows.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "hf_ser.cli",
        "predict",
        str(archive),
        "--engine",
        "ray",
        "--backend",
        "onnx",
        "--model",
        MODEL,
        "--output",
        str(out),
    ]
    env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 1, done.stderr  # two files failed
    assert "2 of 11 files failed" in done.stderr
    assert len(read_rows(out)) == 11
    refused = subprocess.run(cmd[:-2] + ["--json"], capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "--engine ray writes to --output" in refused.stderr
