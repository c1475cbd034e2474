"""The Gradio app of the hf-ser Space (``space/app.py`` and ``hf-ser demo`` both build it from here).

Models offered: the checkpoints shipped in the package (``hf_ser/checkpoints``) and, if set, the folder or Hub id in the
``HF_SER_MODEL`` environment variable. Audio comes by upload or microphone and is decoded with
soundfile (so WAV, FLAC and OGG work without ffmpeg). Recordings longer than ``WINDOW_SECONDS`` (up to
``MAX_SECONDS``) get an emotion-over-time timeline from :func:`hf_ser.segments`.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .audio import AudioDecodeError, header_seconds, load_audio
from .batch import decode_clip
from .inference import bundled_checkpoints, confidence_rule, load_classifier, resolve_model
from .input_policy import DEFAULT_POLICY
from .models.loading import needs_adaptation
from .timeline import segments
from .training.results import RunResult

WINDOW_SECONDS = DEFAULT_POLICY.window_seconds
HOP_SECONDS = DEFAULT_POLICY.hop_seconds
MAX_SECONDS = DEFAULT_POLICY.max_upload_seconds

CSS = """
.gradio-container {max-width: 980px !important; margin: auto;}
#title {text-align: center;}
#title h1 {margin-bottom: 0.2em;}
#verdict textarea, #verdict input {font-size: 1.3em; font-weight: 600;}
footer {visibility: hidden;}
"""


def available_models() -> dict[str, str]:
    """Display name → model folder or Hub id. Speaker-adaptive checkpoints are left out: one clip cannot adapt
    them to its speaker (they need several of the speaker's clips; see ``hf-ser predict --adapt-on``)."""
    models = {name: str(path) for name, path in bundled_checkpoints().items() if not needs_adaptation(path)}
    extra = os.environ.get("HF_SER_MODEL")
    if extra:
        models = {f"custom: {extra}": extra, **models}
    return models


def check_custom_model() -> None:
    """``HF_SER_MODEL`` (``hf-ser demo --model``) must name a model the Space can use, checked when the app is
    built: a name that resolves to nothing, or a speaker-adaptive model, made the Space's first (default) choice
    fail every request with Gradio's bare "Error"."""
    extra = os.environ.get("HF_SER_MODEL")
    if not extra:
        return
    try:
        folder = resolve_model(extra)
    except ValueError as err:
        raise ValueError(f"HF_SER_MODEL / --model: {err}") from None
    if not (folder / "config.json").is_file():
        raise ValueError(f"HF_SER_MODEL / --model: {extra} is an ONNX export; the Space runs the model folder")
    if needs_adaptation(folder):
        raise ValueError(
            f"HF_SER_MODEL / --model: {extra} is speaker-adaptive, and one clip cannot adapt it to its speaker; "
            "offer a speaker-independent model (adaptive ones run with hf-ser predict --adapt-on)"
        )


@lru_cache(maxsize=4)
def _classifier(model: str):
    return load_classifier(model)


@lru_cache(maxsize=4)
def _rule(model: str):
    """The model's "uncertain" rule, built once: a rule that warns (a threshold a 2-label model's scores can never
    fall below) warned in the log on every request."""
    return confidence_rule(_classifier(model))


def model_summary(model: str) -> str:
    """One paragraph on how the model was evaluated, from the run's ``metrics.json`` when it has one."""
    folder = resolve_model(model)  # a Hub id (HF_SER_MODEL) is its downloaded snapshot, not a local path
    path = folder / "metrics.json"
    if not path.is_file():
        return f"Model `{model}`: no evaluation record found next to it."
    result = RunResult.load(path)
    test = result.test
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    family = "Whisper-base encoder + attention head" if config.get("model_type") == "ser_whisper" else "tiny MFCC model"
    text = (
        f"**{Path(str(model)).name}** ({family}). **{len(result.labels)} classes** ({', '.join(result.labels)}), "
        f"{result.parameters:,} parameters. On speakers it never heard (speaker-independent test set): accuracy "
        f"**{100 * test.accuracy:.1f} %**, UAR {100 * test.uar:.1f} %."
    )
    cv = result.cross_validation
    if cv is not None:
        text += (
            f" Across {cv.protocol} ({len(cv.folds)} folds): accuracy {cv.accuracy.percent()} %, "
            f"UAR {cv.uar.percent()} %."
        )
    return text + " Trained on acted speech: expect less on everyday recordings."


def timeline_frame(result, step: float = 0.25):
    """One row per ``step`` seconds over the whole clip: time, emotion ("uncertain", "no speech") and the top
    score (0 for no speech)."""
    import pandas as pd

    rows = []
    for seg in result.segments:
        for t in np.arange(seg.start, seg.end, step):
            rows.append(
                {
                    "time (s)": round(float(t), 2),
                    "emotion": seg.label,
                    "confidence": max(seg.scores.values(), default=0.0) if seg.speech else 0.0,
                }
            )
    return pd.DataFrame(rows)


def classify(audio_path: str | None, model_name: str):
    """Gradio handler: (label scores, timeline figure or None, verdict text). Raises gr.Error on bad input."""
    import gradio as gr

    if not audio_path:
        raise gr.Error("No audio: upload a file or record with the microphone first.")
    models = available_models()
    if model_name not in models:
        raise gr.Error(f"Unknown model {model_name!r}.")
    classifier = _classifier(models[model_name])
    rule = _rule(models[model_name])
    rate = classifier.feature_extractor.sampling_rate
    too_long = "The clip is {:.0f} s long; the limit is {:.0f} s. Trim it and try again."
    # the length from the header, before decoding: an hour at 48 kHz stereo held 5.2 GB to be refused, and every
    # upload was decoded once for its length and again for its answer; only a file whose header does not say (or
    # that libsndfile cannot open) is decoded for it, which also words the decoder's error
    seconds = header_seconds(audio_path)
    if seconds is None:
        try:
            seconds = len(load_audio(audio_path, rate)[0]) / rate
        except AudioDecodeError as err:
            raise gr.Error(shown_error(str(err), audio_path)) from err
    if seconds > MAX_SECONDS:
        raise gr.Error(too_long.format(seconds, MAX_SECONDS))
    if seconds <= WINDOW_SECONDS:
        clip = decode_clip(audio_path, rate)  # the batch rows' own checks: readable, long enough, speech
        if clip.error:  # a clip under the policy's minimum was answered (0.15 s: "fearful, 100 %")
            raise gr.Error(shown_error(clip.error, audio_path))
        if clip.wave is None:
            raise gr.Error("No speech found in the clip (only silence or noise): check the microphone or the file.")
        scores = {d["label"]: d["score"] for d in classifier(clip.wave, top_k=None)}
        verdict = rule.decide(scores, clip.wave, rate, clip.speech_seconds)
        return scores, gr.update(value=None, visible=False), verdict_text(verdict)
    try:
        result = segments(audio_path, classifier, window=WINDOW_SECONDS, hop=HOP_SECONDS, rule=rule)
    except AudioDecodeError as err:  # a header that opened over data that does not decode
        raise gr.Error(shown_error(str(err), audio_path)) from err
    if not result.summary and result.reason:  # "only silence or noise" would be wrong: it heard possible speech
        raise gr.Error(f"No speech the model can score in the recording: {result.reason}.")
    if not result.summary:
        raise gr.Error("No speech found in the recording (only silence or noise).")
    share = 100 * result.speech_seconds / result.duration
    verdict = verdict_text(rule.decide(result.summary), f", over {share:.0f} % speech")
    return result.summary, gr.update(value=timeline_frame(result), visible=True), verdict


def shown_error(message: str, audio_path: str) -> str:
    """A decoding or input-policy error as the Space shows it: the upload's name, not its temporary path, and the
    reason (every failure read "use WAV, FLAC, OGG or MP3", also an empty WAV or one holding NaN)."""
    text = message.replace(str(audio_path), Path(audio_path).name)
    if "cannot decode audio" in text or "Format not recognised" in text:
        text += ". Use WAV, FLAC, OGG or MP3 (not M4A/AAC, which libsndfile does not read)."
    return f"Could not use that audio: {text}"


def verdict_text(verdict, extra: str = "") -> str:
    """The answer as the Space shows it: "angry (82 %)", or plainly uncertain, with the reason and the best guess."""
    if verdict.uncertain:
        return f"uncertain: {verdict.reason} (best guess {verdict.emotion}, {100 * verdict.score:.0f} %{extra})"
    return f"{verdict.label} ({100 * verdict.score:.0f} %{extra})"


def build_demo():
    """The Blocks app."""
    import gradio as gr

    models = available_models()
    if not models:
        raise RuntimeError("no model: bundle a checkpoint in checkpoints/ or set HF_SER_MODEL to a model folder")
    check_custom_model()
    names = list(models)
    with gr.Blocks(title="hf-ser: speech emotion recognition") as demo:
        gr.Markdown(
            "# Speech emotion recognition\n"
            "Upload or record a short clip of speech; an **hf-ser** model estimates which emotion is acted: the "
            "accurate one on OpenAI's Whisper-base encoder, or a tiny MFCC + attention CNN for the edge (after "
            "[arXiv 2507.03251](https://arxiv.org/abs/2507.03251)); choose one in the Model menu. "
            "Recordings longer than 4 s (up to 10 minutes) get an emotion-over-time timeline: speech is found "
            "with Silero VAD, each region is scored in overlapping 4 s windows, silence is never given an emotion.",
            elem_id="title",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                model = gr.Dropdown(names, value=names[0], label="Model")
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech (≤ 10 min)")
                with gr.Row():
                    clear = gr.ClearButton(value="Clear")
                    submit = gr.Button("Classify", variant="primary")
                summary = gr.Markdown(model_summary(models[names[0]]))
            with gr.Column(scale=5):
                verdict = gr.Textbox(label="Most likely emotion", interactive=False, elem_id="verdict")
                label = gr.Label(label="Confidence per emotion", num_top_classes=12)
                timeline = gr.ScatterPlot(
                    x="time (s)",
                    y="confidence",
                    color="emotion",
                    label="Emotion over time (speech regions by emotion; silence as 'no speech' at 0)",
                    y_lim=[0, 1],
                    visible=False,
                )
        gr.Markdown(
            "<small>Estimates from acted speech corpora; not for decisions about people. Audio is processed in "
            "memory and not stored by the app.</small>"
        )
        submit.click(classify, inputs=[audio, model], outputs=[label, timeline, verdict], api_name="classify")
        model.change(lambda name: model_summary(available_models()[name]), inputs=model, outputs=summary)
        clear.add([audio, label, verdict, timeline])
    return demo


# Gradio takes uploads of any size by default; 10 minutes (MAX_SECONDS) of the largest common recording format,
# 96 kHz stereo 32-bit WAV, is 461 MB: a bigger file cannot be a recording the app accepts.
MAX_FILE_SIZE = 500 * 1024**2  # bytes


def launch_options() -> dict:
    """The ``Blocks.launch`` options the app runs with, here and on the Space (``space/app.py``)."""
    import gradio as gr

    return {"theme": gr.themes.Soft(), "css": CSS, "max_file_size": MAX_FILE_SIZE}


def launch(host: str = "127.0.0.1", port: int | None = None, **kwargs):
    """Launch on localhost (``hf-ser demo``)."""
    return build_demo().launch(server_name=host, server_port=port, **launch_options(), **kwargs)
