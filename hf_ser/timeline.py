"""Emotion over time for long recordings: Silero VAD finds speech, each speech region is scored in
overlapping windows, consecutive slots with the same top label are merged.

    from hf_ser import segments
    result = segments("meeting.wav")            # SegmentsResult
    result.label, result.summary                # overall label and scores, weighted by speech time
    for s in result.segments: print(s.start, s.end, s.label)   # "no speech" between speech regions

``segments`` also takes what the pipeline takes (raw file bytes, a numpy or torch array at the classifier's rate,
a ``{"array", "sampling_rate"}`` dict), held as an in-memory WAV. A file is streamed from disk twice, in blocks:
once through the VAD (timestamps only), once region by region for scoring; memory is bounded by one region (at
most ``max_region`` seconds), not by the file.
Non-speech is reported as ``"no speech"`` and never given an emotion.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .confidence import DEFAULT_RULE, UNCERTAIN, ConfidenceRule
from .input_policy import DEFAULT_POLICY, NO_SPEECH, VAD_CHUNK, VAD_RATE
from .models.ser.audio_ser import check_samples, to_mono


@dataclass
class Segment:
    start: float  # seconds
    end: float
    label: str  # an emotion, "uncertain" or "no speech"
    scores: dict[str, float] = field(default_factory=dict)  # empty for non-speech
    reason: str | None = None  # why "uncertain"; for "no speech", that the VAD heard possible speech there

    @property
    def speech(self) -> bool:
        return self.label != NO_SPEECH


@dataclass
class SegmentsResult:
    duration: float
    segments: list[Segment]
    summary: dict[str, float]  # mean scores over speech, weighted by time; empty without speech
    speech_seconds: float
    rule: ConfidenceRule = field(default=DEFAULT_RULE, repr=False)

    @property
    def label(self) -> str:
        """The overall answer: the top emotion of the summary, "uncertain" (see :attr:`reason`) or "no speech"."""
        return self.rule.decide(self.summary).label if self.summary else NO_SPEECH

    @property
    def reason(self) -> str | None:
        """Why the answer is "uncertain"; for "no speech", that the VAD heard possible speech it did not confirm."""
        if self.summary:
            return self.rule.decide(self.summary).reason
        return next((s.reason for s in self.segments if s.reason), None)

    def to_dict(self) -> dict:
        return {
            "duration": self.duration,
            "speech_seconds": self.speech_seconds,
            "label": self.label,
            "reason": self.reason,
            "summary": self.summary,
            "segments": [asdict(s) for s in self.segments],
        }


def _progress(total: float, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=round(total, 1), desc=desc, unit="s", disable=not enabled, file=sys.stderr, leave=False)


Source = str | Path | io.BytesIO  # a file, or an in-memory WAV (_in_memory)


def _name(source: Source) -> str:
    return "<in-memory audio>" if isinstance(source, io.BytesIO) else str(source)


@contextmanager
def _sound_file(source: Source):
    """The open file; libsndfile's errors, on opening or while reading inside the block, become an
    AudioDecodeError naming the file (an unreadable .wav was soundfile's LibsndfileError, which ended a whole
    ``hf-ser predict --segments`` run, every other file's timeline with it)."""
    import soundfile as sf

    from .audio import AudioDecodeError

    if isinstance(source, io.BytesIO):
        source.seek(0)  # read twice (VAD pass, then region by region), like a file
    try:
        with sf.SoundFile(source if isinstance(source, io.BytesIO) else str(source)) as handle:
            yield handle
    except sf.SoundFileError as err:
        raise AudioDecodeError.cannot_decode(_name(source), err) from err


def _in_memory(source, rate: int) -> io.BytesIO:
    """File bytes, an array at ``rate`` or a ``{"array", "sampling_rate"}`` dict as an in-memory float WAV, decoded
    and checked as the pipeline does (errors name the input)."""
    import soundfile as sf

    from .models.ser.audio_ser import check_waveform, decode_input, load_audio

    if isinstance(source, (bytes, bytearray)):
        wave, rate = load_audio(bytes(source))
    else:
        if isinstance(source, dict) and "sampling_rate" in source:
            rate = int(source["sampling_rate"])  # kept: resampled as a file at that rate would be
        wave = check_waveform(np.asarray(decode_input(source, rate), dtype=np.float32), "the audio array")
    if wave.ndim != 1:
        raise ValueError(f"the audio array: expected mono audio (samples,) or (samples, channels), got {wave.shape}")
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype="FLOAT")
    return buffer


def _blocks(path: Source, target_rate: int, block_seconds: float = 30.0):
    """Mono blocks at ``target_rate``, read and resampled incrementally (soxr's streaming resampler)."""
    import soxr

    with _sound_file(path) as handle:
        stream = soxr.ResampleStream(handle.samplerate, target_rate, 1, dtype="float32", quality="HQ")
        block = max(int(block_seconds * handle.samplerate), 1)
        while True:
            data = handle.read(block, dtype="float32", always_2d=True)
            last = len(data) < block
            yield stream.resample_chunk(check_samples(to_mono(data), _name(path)), last=last)
            if last:
                return


class SpeechRegions(NamedTuple):
    regions: list[tuple[float, float]]  # (start, end) of speech, seconds
    duration: float  # of the whole recording, seconds
    probabilities: np.ndarray  # Silero's speech probability of each VAD_CHUNK (at VAD_RATE), in order


def speech_regions(
    path: Source,
    threshold: float = DEFAULT_POLICY.vad_threshold,
    min_speech: float = 0.3,
    merge_gap: float = 0.5,
    max_region: float = 60.0,
    progress: bool = False,
) -> SpeechRegions:
    """Speech in seconds from Silero VAD over the streamed file, and the speech probability of each chunk."""
    import torch
    from silero_vad import VADIterator, load_silero_vad

    if not (0 < threshold < 1 and min_speech >= 0 and merge_gap >= 0 and max_region > 0):  # max_region 0 looped
        raise ValueError(  # forever; a threshold of 1.5 found nothing and said "no speech"
            "need 0 < threshold < 1, min_speech >= 0, merge_gap >= 0 and max_region > 0; got "
            f"threshold={threshold}, min_speech={min_speech}, merge_gap={merge_gap}, max_region={max_region}"
        )

    with _sound_file(path) as handle:
        duration = handle.frames / handle.samplerate
    model = _KeptProbabilities(load_silero_vad())
    iterator = VADIterator(model, threshold=threshold, sampling_rate=VAD_RATE)
    regions, start, carry = [], None, np.zeros(0, np.float32)
    peak = max((float(np.abs(block).max(initial=0.0)) for block in _blocks(path, VAD_RATE)), default=0.0)
    with _progress(duration, "speech detection", progress) as bar, torch.inference_mode():
        for block in _blocks(path, VAD_RATE):
            block = DEFAULT_POLICY.vad_input(block, peak)  # the policy's level-independent decision, at the file's peak
            audio = np.concatenate([carry, block])
            usable = len(audio) - len(audio) % VAD_CHUNK
            for offset in range(0, usable, VAD_CHUNK):
                event = iterator(torch.from_numpy(audio[offset : offset + VAD_CHUNK]))
                if event and "start" in event:
                    start = event["start"] / VAD_RATE
                elif event and "end" in event and start is not None:
                    regions.append((start, event["end"] / VAD_RATE))
                    start = None
            carry = audio[usable:]
            bar.update(round(len(block) / VAD_RATE, 1))
    if start is not None:
        regions.append((start, duration))
    merged: list[tuple[float, float]] = []
    for s, e in regions:
        if merged and s - merged[-1][1] < merge_gap:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, min(e, duration)))
    split = []
    for s, e in merged:
        if e - s < min_speech:
            continue
        while e - s > max_region:
            split.append((s, s + max_region))
            s += max_region
        split.append((s, e))
    return SpeechRegions(split, duration, np.asarray(model.probabilities, np.float32))


class _KeptProbabilities:
    """Silero's model as ``VADIterator`` calls it, keeping each chunk's speech probability (the iterator keeps
    none), so that a stretch it did not call speech can still say the model heard possible speech there."""

    def __init__(self, model):
        self.model, self.probabilities = model, []

    def __call__(self, chunk, sampling_rate: int):
        probability = self.model(chunk, sampling_rate)
        self.probabilities.append(float(probability.item()))
        return probability

    def reset_states(self) -> None:
        self.model.reset_states()


EDGE_SECONDS = 0.5  # a speech region's onset and decay, whose chunks rise and fall through 0.2-0.5


def _no_speech(
    start: float, end: float, probabilities: np.ndarray, threshold: float, after: bool, before: bool
) -> Segment:
    """A stretch without confirmed speech; where some chunk of it reaches the input policy's ``speech_evidence``
    (Silero half-hears some real emotional speech: quiet sad speech, shouting), it says so, as a batch row answers
    such a clip "uncertain (too little speech)" rather than "no speech". ``after`` / ``before``: the stretch follows
    / precedes a speech region, whose edge (:data:`EDGE_SECONDS`) is left out: in pauses between RAVDESS sentences
    the onsets and decays reached 0.28-0.34, and every such pause said it."""
    inner_start, inner_end = start + EDGE_SECONDS * after, end - EDGE_SECONDS * before
    first, last = int(inner_start * VAD_RATE) // VAD_CHUNK, -(-int(inner_end * VAD_RATE) // VAD_CHUNK)
    peak = float(probabilities[first:last].max(initial=0.0)) if inner_end > inner_start else 0.0
    reason = None
    if peak >= DEFAULT_POLICY.speech_evidence:
        reason = f"possible speech the VAD did not confirm (its peak speech probability {peak:.2f}, under {threshold})"
    return Segment(round(start, 3), round(end, 3), NO_SPEECH, reason=reason)


def _read(path: Source, start: float, end: float, rate: int) -> np.ndarray:
    from .audio import resample

    with _sound_file(path) as handle:
        handle.seek(int(start * handle.samplerate))
        data = handle.read(int((end - start) * handle.samplerate), dtype="float32", always_2d=True)
        return resample(check_samples(to_mono(data), _name(path)), handle.samplerate, rate)


def _rate(classifier) -> int:
    """The sampling rate a classifier of either backend expects."""
    return getattr(classifier, "sampling_rate", None) or classifier.feature_extractor.sampling_rate


def _window_starts(length: float, window: float, hop: float) -> list[float]:
    if length <= window:
        return [0.0]
    starts = list(np.arange(0.0, length - window + 1e-9, hop))
    if starts[-1] + window < length:
        starts.append(length - window)
    return [float(s) for s in starts]


def score_region(classifier, wave: np.ndarray, window: float, hop: float) -> list[tuple[float, float, dict]]:
    """Slots of ``hop`` seconds over a region, each with the mean scores of the windows that cover it."""
    rate = _rate(classifier)
    length = len(wave) / rate
    starts = _window_starts(length, window, hop)
    chunks = [wave[int(s * rate) : int((s + window) * rate)] for s in starts]
    results = classifier(chunks, top_k=None, batch_size=16)
    window_scores = [{d["label"]: d["score"] for d in r} for r in results]
    edges = sorted({0.0, length, *[min(s + k * hop, length) for s in starts for k in range(int(window / hop) + 1)]})
    slots = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b - a < 1e-6:
            continue
        covering = [w for s, w in zip(starts, window_scores) if s <= a + 1e-9 and b <= s + window + 1e-9]
        covering = covering or [window_scores[int(np.argmin([abs(s + window / 2 - (a + b) / 2) for s in starts]))]]
        slots.append((a, b, {k: float(np.mean([c[k] for c in covering])) for k in covering[0]}))
    return slots


def _merge(
    slots: list[tuple[float, float, dict]], rule: ConfidenceRule = DEFAULT_RULE, out_of_range: str | None = None
) -> list[Segment]:
    """Consecutive slots with the same answer (an emotion, or "uncertain") become one segment."""
    segments: list[Segment] = []
    for a, b, scores in slots:
        verdict = rule.decide(scores)
        label, reason = (UNCERTAIN, out_of_range) if out_of_range else (verdict.label, verdict.reason)
        last = segments[-1] if segments else None
        if last and last.label == label and abs(last.end - a) < 1e-6:
            total = (last.end - last.start) + (b - a)
            last.scores = {k: (last.scores[k] * (last.end - last.start) + scores[k] * (b - a)) / total for k in scores}
            last.end = b
        else:
            segments.append(Segment(a, b, label, dict(scores), reason))
    return segments


def segments(
    source: str | Path | bytes | np.ndarray | dict,
    classifier=None,
    window: float = DEFAULT_POLICY.window_seconds,
    hop: float = DEFAULT_POLICY.hop_seconds,
    progress: bool = False,
    rule: ConfidenceRule = DEFAULT_RULE,
    **vad_options,
) -> SegmentsResult:
    """Emotion over time of an audio file, file bytes, an array at the classifier's rate or a ``{"array",
    "sampling_rate"}`` dict (see the module docstring); ``classifier`` defaults to the default model. ``rule`` marks
    slots "uncertain" (a low calibrated score, or a region out of range: clipped, band-limited). ``vad_options`` go
    to :func:`speech_regions` (threshold, min_speech, merge_gap, max_region)."""
    from .audio import AudioDecodeError

    if not (window >= DEFAULT_POLICY.min_seconds and 0 < hop <= window):  # hop 0 divided by zero; window 0 was
        raise ValueError(  # an empty clip; a hop beyond the window left slots no window heard
            f"window must be at least {DEFAULT_POLICY.min_seconds} s and hop in (0, window]; got window={window}, "
            f"hop={hop}"
        )
    path_like = isinstance(source, (str, os.PathLike))
    if path_like and Path(source).is_dir():
        raise AudioDecodeError(f"{source}: a folder, not an audio file (for folders: hf-ser predict --segments)")
    if path_like and not Path(source).is_file():
        raise AudioDecodeError(f"{source}: no such audio file")
    from .inference import load_classifier, longest_clip_seconds

    if classifier is None:
        classifier = load_classifier()
    longest = longest_clip_seconds(classifier)
    if longest is not None and window > longest:  # a region longer than 30 s ended in the pipeline's refusal,
        raise ValueError(  # which told the caller to use hf_ser.segments
            f"window={window} s: this model takes at most {longest:g} s in one piece; use a window of {longest:g} s "
            "or less"
        )
    rate = _rate(classifier)
    if not path_like:
        source = _in_memory(source, rate)
    with _sound_file(source) as handle:  # as a batch row refuses it: empty, or under the policy's minimum
        length = handle.frames / handle.samplerate
    if not length:
        raise AudioDecodeError(f"{_name(source)}: zero-length audio")
    if too_short := DEFAULT_POLICY.too_short(length):
        raise ValueError(f"{_name(source)}: {too_short}")
    regions, duration, probabilities = speech_regions(source, progress=progress, **vad_options)
    threshold = vad_options.get("threshold", DEFAULT_POLICY.vad_threshold)
    out: list[Segment] = []
    cursor = 0.0
    totals: dict[str, float] = {}
    speech = 0.0
    with _progress(sum(e - s for s, e in regions), "emotion", progress) as bar:
        for start, end in regions:
            if start - cursor > 1e-6:
                out.append(_no_speech(cursor, start, probabilities, threshold, after=bool(out), before=True))
            wave = _read(source, start, end, rate)
            for seg in _merge(score_region(classifier, wave, window, hop), rule, rule.out_of_range(wave, rate)):
                seg.start, seg.end = round(seg.start + start, 3), round(seg.end + start, 3)
                out.append(seg)
                for k, v in seg.scores.items():
                    totals[k] = totals.get(k, 0.0) + v * (seg.end - seg.start)
                speech += seg.end - seg.start
            cursor = end
            bar.update(round(end - start, 1))
    if duration - cursor > 1e-6:
        out.append(_no_speech(cursor, duration, probabilities, threshold, after=bool(regions), before=False))
    summary = {k: v / speech for k, v in sorted(totals.items(), key=lambda kv: -kv[1])} if speech else {}
    return SegmentsResult(duration=duration, segments=out, summary=summary, speech_seconds=speech, rule=rule)
