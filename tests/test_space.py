"""The Gradio Space: headless API calls, concurrency, bad input, and a real browser."""

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_ser import load_classifier

from .conftest import make_model

gradio = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def space(tmp_path_factory, request):
    """The app on a random-weight checkpoint given through HF_SER_MODEL, on localhost."""
    tmp = tmp_path_factory.mktemp("space")
    model_dir = make_model(tmp, labels=["neutral", "happy", "sad", "angry", "fearful"])
    old = os.environ.get("HF_SER_MODEL")
    os.environ["HF_SER_MODEL"] = str(model_dir)
    from hf_ser.demo import build_demo, launch_options

    demo = build_demo()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True, **launch_options())
    yield {"url": demo.local_url, "model_dir": model_dir, "model_name": f"custom: {model_dir}", "tmp": tmp}
    demo.close()
    if old is None:
        os.environ.pop("HF_SER_MODEL", None)
    else:
        os.environ["HF_SER_MODEL"] = old


def clip(
    tmp: Path, name: str, seconds: float, pitch: float, rate: int = 16000, seed: int = 0, speech: bool = True
) -> Path:
    """A speech-like clip (Silero VAD calls it speech), or with ``speech=False`` a steady harmonic tone (not)."""
    from hf_ser.example import synthetic_speech, synthetic_voice

    path = tmp / name
    make = synthetic_speech if speech else synthetic_voice
    sf.write(path, make(seconds, rate, pitch=pitch, seed=seed), rate)
    return path


def top_label(model_dir, path) -> str:
    return load_classifier(model_dir)(str(path), top_k=1)[0]["label"]


def call(space, path):
    client = gradio_client.Client(space["url"], verbose=False)
    return client.predict(gradio_client.handle_file(str(path)), space["model_name"], api_name="/classify")


def test_client_label_matches_pipeline(space):
    path = clip(space["tmp"], "short.wav", 2.5, 180)
    label, timeline, verdict = call(space, path)
    assert label["label"] == top_label(space["model_dir"], path)
    assert verdict.startswith(label["label"])
    assert len(label["confidences"]) == 5
    assert abs(sum(c["confidence"] for c in label["confidences"]) - 1) < 1e-4


def test_long_clip_without_speech_is_refused_plainly(space):
    import gradio_client

    # a steady harmonic tone: no speech region; the VAD gives its voice-like harmonics 0.42 somewhere, so the
    # refusal says so (as a batch row answers such a clip "uncertain", not "no speech"; a hum reaches 0.44)
    path = clip(space["tmp"], "long.wav", 9.0, 150, rate=22050, speech=False)
    with pytest.raises(gradio_client.exceptions.AppError, match="No speech the model can score in the recording: pos"):
        call(space, path)
    _, short_timeline, _ = call(space, clip(space["tmp"], "short2.wav", 2.0, 150))
    assert short_timeline["visible"] is False  # clips within one window get no timeline


@pytest.mark.real_data
def test_long_recording_gets_a_timeline_over_the_whole_clip(space):
    from hf_ser.audio import load_audio

    from .conftest import SHARED_CORPORA

    files = sorted((SHARED_CORPORA / "ravdess" / "Actor_09").glob("*.flac"))[:3]
    parts = [np.zeros(16000, np.float32)]
    for f in files:
        parts += [load_audio(f, 16000)[0], np.zeros(2 * 16000, np.float32)]
    path = space["tmp"] / "real_long.wav"
    sf.write(path, np.concatenate(parts), 16000)
    duration = sum(len(p) for p in parts) / 16000
    label, timeline, verdict = call(space, path)
    assert timeline["visible"] is True and timeline["value"]["columns"] == ["time (s)", "emotion", "confidence"]
    rows = timeline["value"]["data"]
    assert rows[0][0] == 0.0 and rows[-1][0] > duration - 0.5  # covers the whole clip
    emotions = {r[1] for r in rows}
    assert "no speech" in emotions and emotions - {"no speech"}  # silence shaded, speech coloured
    assert all(r[2] == 0.0 for r in rows if r[1] == "no speech")
    assert all(0 < r[2] <= 1 for r in rows if r[1] != "no speech")
    assert verdict.startswith(label["label"]) and "speech" in verdict


def test_eight_concurrent_calls(space):
    paths = [clip(space["tmp"], f"c{i}.wav", 1.0 + 0.3 * i, 110 + 25 * i, seed=i) for i in range(8)]
    expected = [top_label(space["model_dir"], p) for p in paths]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda p: call(space, p)[0]["label"], paths))
    assert results == expected


@pytest.mark.parametrize(
    "kind, message",
    [
        ("silent", "No speech found"),
        ("too_long", "limit is 600 s"),
        ("unreadable", "Could not use that audio: broken.wav: cannot decode audio .*WAV, FLAC, OGG or MP3"),
        ("empty", "Could not use that audio: empty.wav: zero-length audio"),  # was "use WAV, FLAC, OGG or MP3"
        ("short", r"short.wav: clip is 0.150 s long; at least 0.25 s are needed"),  # was answered, at 100 %
        ("none", "No audio"),
    ],
)
def test_bad_input_is_a_plain_error_and_app_stays_up(space, kind, message):
    tmp = space["tmp"]
    if kind == "silent":
        path = tmp / "silent.wav"
        sf.write(path, np.zeros(16000, np.float32), 16000)
    elif kind == "too_long":
        path = tmp / "long601.wav"
        sf.write(path, 0.1 * np.ones(601 * 8000, np.float32), 8000)
    elif kind == "empty":
        path = tmp / "empty.wav"
        sf.write(path, np.zeros(0, np.float32), 16000)
    elif kind == "short":  # speech-like, so only its length refuses it
        path = clip(tmp, "short.wav", 0.15, 180)
    elif kind == "unreadable":
        path = tmp / "broken.wav"
        path.write_bytes(b"definitely not audio")
    client = gradio_client.Client(space["url"], verbose=False)
    audio = None if kind == "none" else gradio_client.handle_file(str(path))
    with pytest.raises(Exception, match=message):
        client.predict(audio, space["model_name"], api_name="/classify")
    assert call(space, clip(tmp, "after.wav", 1.0, 200))[0]["label"]  # still serving


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("chromium") is None, reason="Debian chromium missing")
def test_real_browser_upload_and_classify(space, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    path = clip(space["tmp"], "browser.wav", 3.5, 170)
    expected = top_label(space["model_dir"], path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(space["url"], wait_until="networkidle")
        page.locator("input[type=file]").first.set_input_files(str(path))
        page.get_by_role("button", name="Classify").click()
        verdict = page.locator("#verdict textarea, #verdict input").first
        page.wait_for_function("el => el.value && el.value.length > 0", arg=verdict.element_handle(), timeout=60000)
        page.wait_for_timeout(500)
        shot = tmp_path / "space.png"
        page.screenshot(path=str(shot), full_page=True)
        text = verdict.input_value()
        browser.close()
    assert text.split(" (")[0] == expected
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("HF_SER_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_demo_on_a_port_in_use_says_so(monkeypatch, capsys):
    """`hf-ser demo --port N` with N taken was gradio's OSError traceback; it is now a one-line error."""
    import socket

    import hf_ser.demo
    from hf_ser.cli import main as cli_main

    with gradio.Blocks() as bare:  # no model needed to bind a port
        gradio.Markdown("bare")
    monkeypatch.setattr(hf_ser.demo, "build_demo", lambda: bare)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli_main(["demo", "--port", str(port)]) == 2
    assert f"cannot serve on 127.0.0.1:{port}: the port is in use" in capsys.readouterr().err


def test_demo_refuses_a_model_it_cannot_offer(monkeypatch, capsys, tmp_path):
    """`hf-ser demo --model nope` (or a speaker-adaptive model, or an ONNX export) served a Space whose default
    choice failed every request with gradio's bare "Error"; it is refused before the server starts."""
    import hf_ser.demo
    from hf_ser.cli import main as cli_main
    from hf_ser.inference import bundled_dir

    monkeypatch.setattr(hf_ser.demo, "launch", lambda **kw: hf_ser.demo.build_demo() and pytest.fail("served"))
    monkeypatch.setenv("HF_SER_MODEL", "")  # recorded, so that what `demo --model` sets is undone after the test
    for model, message in [
        ("ser-generall", "HF_SER_MODEL / --model: ser-generall: not a model folder"),
        ("ser-general-adaptive", "ser-general-adaptive is speaker-adaptive, and one clip cannot adapt it"),
        (str(bundled_dir() / "ser-general" / "onnx"), "is an ONNX export; the Space runs the model folder"),
    ]:
        assert cli_main(["demo", "--model", model]) == 2
        assert message in capsys.readouterr().err, model


def test_the_summary_of_a_hub_model_reads_its_downloaded_snapshot(monkeypatch):
    """`HF_SER_MODEL=user/name` (a Hub id) got "no evaluation record found": the summary looked for
    user/name/metrics.json under the working folder, not in the snapshot the id resolves to."""
    import hf_ser.demo
    from hf_ser.inference import bundled_dir

    snapshot = bundled_dir() / "ser-general"  # stands in for the download
    monkeypatch.setattr(hf_ser.demo, "resolve_model", lambda model: snapshot if model == "someone/ser-model" else None)
    text = hf_ser.demo.model_summary("someone/ser-model")
    assert text.startswith("**ser-model** (tiny MFCC model). **7 classes**") and "no evaluation record" not in text


def test_a_recording_over_the_limit_is_refused_from_its_header_before_it_is_decoded(space, monkeypatch):
    """A 1-hour 48 kHz stereo upload held 5.2 GB at its peak (decoded whole) to be told it was too long."""
    import gradio as gr

    from hf_ser import demo

    path = space["tmp"] / "hour_header.wav"
    with sf.SoundFile(path, "w", 8000, 1, "PCM_16") as handle:  # 700 s, written in blocks
        for _ in range(7):
            handle.write(np.zeros(100 * 8000, np.int16))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a recording its header already put over the limit")

    monkeypatch.setattr(demo, "load_audio", no_decoding)
    with pytest.raises(gr.Error, match="The clip is 700 s long; the limit is 600 s"):
        demo.classify(str(path), space["model_name"])


def test_an_upload_whose_header_gives_its_length_is_decoded_once(space, monkeypatch):
    """Every upload was decoded once for its length and again for its answer (twice the work on a 10-minute
    recording). The header's length now decides, and the answer is the same; a file libsndfile cannot open is
    still decoded for its error (test_bad_input_is_a_plain_error_and_app_stays_up)."""
    from hf_ser import demo

    tmp = space["tmp"]
    short, long = clip(tmp, "once_short.wav", 2.0, 190), clip(tmp, "once_long.wav", 9.0, 160)
    before = {p: demo.classify(str(p), space["model_name"]) for p in (short, long)}

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded the whole upload for a length its header gives")

    monkeypatch.setattr(demo, "load_audio", no_decoding)
    for path, (scores, _, verdict) in before.items():
        again = demo.classify(str(path), space["model_name"])
        assert again[0] == pytest.approx(scores) and again[2] == verdict
    assert before[long][1]["visible"] and not before[short][1]["visible"]  # a timeline for the long one only


def test_the_upload_size_limit_admits_every_recording_the_length_limit_does():
    from hf_ser.demo import MAX_SECONDS, launch_options

    largest = 44 + MAX_SECONDS * 96_000 * 2 * 4  # 10 minutes of 96 kHz stereo 32-bit WAV
    assert largest < launch_options()["max_file_size"] < 2 * largest  # gradio takes any size by default
