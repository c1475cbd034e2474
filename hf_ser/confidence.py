"""Honest confidence: temperature scaling, calibration error, and the "uncertain" answer.

**Calibration.** A network's softmax scores are over-confident, the more so on speakers and recordings it never
heard. Temperature scaling (Guo et al., 2017) divides the logits by one scalar ``T`` fitted on validation speakers
(minimum negative log-likelihood); it never changes the top label. Training fits it when the split has
validation speakers and stores it as ``config.temperature``; the pipeline and the ONNX runtime apply it.
:func:`expected_calibration_error` is the usual 15-bin ECE of the top score.

**Uncertain.** :class:`ConfidenceRule` turns calibrated scores and the waveform into a :class:`Verdict`: the
emotion, or ``"uncertain"`` (scores kept) when the top score is below ``threshold`` or the input is out of
range: heavily clipped, or band-limited below what the models were trained on (telephone audio: nearly no
energy above 3.4 kHz, where our 16 kHz training clips always have some). Batch rows, the CLI, the timeline and
the Space all ask this one rule.

numpy and scipy only (no torch): the ONNX backend uses it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .input_policy import seconds_down

UNCERTAIN = "uncertain"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    labels = np.asarray(labels)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]))


TEMPERATURE_RANGE = (0.05, 20.0)  # where fit_temperature searches; a fit at an edge means the data could not fix it


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels`` (searched in
    :data:`TEMPERATURE_RANGE`)."""
    from scipy.optimize import minimize_scalar

    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(f"need logits (n, classes) and n labels, got {logits.shape} and {labels.shape}")

    def nll(log_t: float) -> float:
        return negative_log_likelihood(logits, labels, float(np.exp(log_t)))

    best = minimize_scalar(nll, bounds=tuple(np.log(TEMPERATURE_RANGE)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(best.x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy − confidence| over equal-width bins of the top score, weighted by the bins' sizes."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    return _binned_ece(probs.max(axis=1), probs.argmax(axis=1) == labels, bins)


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Each score's equal-width bin in [0, 1] (right edges inclusive), as the ECE counts them."""
    return np.clip(np.digitize(confidence, np.linspace(0.0, 1.0, bins + 1)[1:-1], right=True), 0, bins - 1)


def _binned_ece(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    correct = np.asarray(correct, dtype=float)
    which = _bin_index(confidence, bins)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def coverage_curve(probs: np.ndarray, labels: np.ndarray, thresholds=None) -> list[tuple[float, float, float]]:
    """(threshold, coverage, accuracy of the answered) for each threshold on the top score that keeps any clip."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    thresholds = np.round(np.arange(0.0, 0.96, 0.05), 2) if thresholds is None else thresholds
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    rows = []
    for t in thresholds:
        kept = confidence >= t
        if kept.any():
            rows.append((float(t), float(kept.mean()), float(correct[kept].mean())))
    return rows


def ece_sampling_floor(
    coverage: list[tuple[float, float, float]], clips: int, bins: int = 15, draws: int = 2000, seed: int = 0
) -> float:
    """The ECE a *perfectly* calibrated model would still show on ``clips`` test clips whose top scores are spread
    as in ``coverage`` (a :func:`coverage_curve`): each clip is right with probability equal to its score, so
    a bin's accuracy differs from its confidence by sampling alone. Monte Carlo mean over ``draws``.

    It puts the measured ECE in proportion: on a few hundred clips a flawless model scores a few hundredths, not 0.
    Scores inside each 0.05 step of the curve are taken as evenly spread (the curve keeps no finer detail).
    """
    if clips <= 0:
        raise ValueError(f"clips must be a positive number of test clips, got {clips}")
    if not coverage:
        raise ValueError("coverage is empty: need the (threshold, coverage, accuracy) rows of coverage_curve")
    thresholds = [t for t, _, _ in coverage]
    step = thresholds[1] - thresholds[0] if len(thresholds) > 1 else 0.05
    thresholds.append(min(1.0, thresholds[-1] + step))
    shares = [c for _, c, _ in coverage] + [0.0]
    confidence = []
    for low, high, share, next_share in zip(thresholds, thresholds[1:], shares, shares[1:]):
        count = round(clips * (share - next_share))
        confidence.extend(low + (high - low) * (np.arange(count) + 0.5) / max(count, 1))
    return ece_floor_of_scores(np.asarray(confidence), bins, draws, seed)


def ece_floor_of_scores(confidence: np.ndarray, bins: int = 15, draws: int = 2000, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model would still show on clips with these top scores (each clip right
    with probability equal to its score): :func:`ece_sampling_floor` when every clip's score is known."""
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.ndim != 1 or confidence.size == 0:
        raise ValueError(f"confidence must be a non-empty 1-D array of top scores, got shape {confidence.shape}")
    correct = np.random.default_rng(seed).random((draws, confidence.size)) < confidence
    which = _bin_index(confidence, bins)
    ece = np.zeros(draws)
    for b in np.unique(which):  # the same 15-bin ECE as expected_calibration_error, for every draw at once
        members = which == b
        ece += members.mean() * np.abs(correct[:, members].mean(axis=1) - confidence[members].mean())
    return float(ece.mean())


def clip_scores(probs: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[bool]]:
    """Each clip's top score (4 decimals) and whether its top label is ``labels``'s: what a run keeps so that
    :func:`pooled_ece` can pool its clips with other folds'."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    return np.round(probs.max(axis=1), 4).tolist(), (probs.argmax(axis=1) == labels).tolist()


def pooled_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """:func:`expected_calibration_error` from each clip's (calibrated) top score and whether its label was right:
    what pools clips scored by several models (the folds of a protocol, each clip tested once)."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or confidence.size == 0:
        raise ValueError(f"need as many top scores as right/wrong flags, got {confidence.shape} and {correct.shape}")
    return _binned_ece(confidence, correct, bins)


def clipped_fraction(wave: np.ndarray) -> float:
    """Share of samples at the waveform's extreme (within 0.1 % of its peak, peak ≥ 0.5 of full scale):
    a clipped recording piles samples up there, a clean one has a handful."""
    wave = np.asarray(wave, dtype=np.float32)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak < 0.5:
        return 0.0
    return float(np.mean(np.abs(wave) >= 0.999 * peak))


def high_band_share(wave: np.ndarray, rate: int, cutoff_hz: float = 4000.0) -> float:
    """Share of the clip's spectral energy above ``cutoff_hz`` (a telephone line keeps nearly none)."""
    wave = np.asarray(wave, dtype=np.float64)
    if rate <= 2 * cutoff_hz or wave.size < 512:
        return 0.0
    spectrum = np.abs(np.fft.rfft(wave - wave.mean())) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1.0 / rate)
    total = spectrum.sum()
    return float(spectrum[freqs >= cutoff_hz].sum() / total) if total > 0 else 0.0


@dataclass(frozen=True)
class Verdict:
    """The answer shown to a user: the emotion, or ``"uncertain"`` with the reason; scores are always kept."""

    label: str
    score: float
    emotion: str  # the top emotion, also when the label is "uncertain"
    reason: str | None = None

    @property
    def uncertain(self) -> bool:
        return self.label == UNCERTAIN


@dataclass(frozen=True)
class ConfidenceRule:
    """When to answer "uncertain" (the thresholds are documented in the README and measured in RESULTS.md).

    threshold: calibrated top score below which the answer is uncertain.
    max_clipped: largest share of samples at the clip's extreme before it counts as heavily clipped.
    min_high_band: smallest share of energy above ``band_cutoff_hz`` before the clip counts as band-limited
      (0 turns the check off: a model trained on telephone-band copies, ``config.trained_band_limited``).
    band_cutoff_hz: 4 kHz, the Nyquist frequency of an 8 kHz recording. At 3.8 kHz the check caught the
      corrupted suite's phone line (300-3400 Hz) but missed about 60 % of plain 8 kHz files (PCM, mu-law, GSM 6.10:
      what phone lines and call-centre archives hold keeps energy up to 4 kHz); ``bench/bench_band.py``.
    min_seconds: shorter clips are out of range. Both defaults were trained on 3 s crops of 2-4 s clips; on their
      validation speakers (``bench/bench_duration.py``) 1 s excerpts were right 54-55 % of the time against 76-79 %
      for whole clips, while the calibrated top score stayed 0.73-0.84: the score does not see the length.
    min_speech_seconds: where the caller ran the VAD (batch and Ray rows, the Space), clips with less speech than
      this are out of range too: 0.5 s of speech inside 2.5 s was right 43 % of the time at a top score of 0.67, and
      its length alone passed it. Lower than ``min_seconds`` because the VAD counts less speech than there is (1 s
      excerpts of the default's validation clips measured 0.90 s on average; bench_duration.py).
    """

    threshold: float = 0.4
    max_clipped: float = 0.005
    min_high_band: float = 1e-5
    band_cutoff_hz: float = 4000.0
    min_seconds: float = 1.0
    min_speech_seconds: float = 0.8

    def __post_init__(self):
        if not 0 <= self.threshold < 1:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if not 0 < self.max_clipped < 1:
            raise ValueError(f"max_clipped must be in (0, 1), got {self.max_clipped}")
        if not 0 <= self.min_high_band < 1:
            raise ValueError(f"min_high_band must be in [0, 1), got {self.min_high_band}")
        if self.min_seconds < 0:
            raise ValueError(f"min_seconds must be >= 0, got {self.min_seconds}")
        if self.min_speech_seconds < 0:
            raise ValueError(f"min_speech_seconds must be >= 0, got {self.min_speech_seconds}")

    def out_of_range(self, wave: np.ndarray | None, rate: int, speech_seconds: float | None = None) -> str | None:
        """Why the clip is outside what the models were trained on, or None. ``speech_seconds`` (the VAD's, where the
        caller ran it) is held to ``min_speech_seconds`` as the clip's length is to ``min_seconds``: a long clip with
        little speech in it is short."""
        if wave is None:
            return None
        if (seconds := len(wave) / rate) < self.min_seconds:
            return f"too short ({seconds_down(seconds)} s; under {self.min_seconds:g} s the answer is unreliable)"
        if speech_seconds is not None and speech_seconds < self.min_speech_seconds:
            return (
                f"too little speech ({seconds_down(speech_seconds)} s in {seconds:.2f} s; under "
                f"{self.min_speech_seconds:g} s the answer is unreliable)"
            )
        clipped = clipped_fraction(wave)
        if clipped > self.max_clipped:
            return f"heavily clipped ({100 * clipped:.1f} % of samples at the peak)"
        high = high_band_share(wave, rate, self.band_cutoff_hz)
        if rate > 2 * self.band_cutoff_hz and high < self.min_high_band:
            return f"band-limited (no energy above {self.band_cutoff_hz / 1000:.1f} kHz: a telephone line?)"
        return None

    def decide(
        self,
        scores: dict[str, float] | list[dict],
        wave: np.ndarray | None = None,
        rate: int = 16000,
        speech_seconds: float | None = None,
    ) -> Verdict:
        """The verdict on one clip's calibrated ``scores``: ``{label: score}``, or the pipeline's own answer
        (``[{"label", "score"}, ...]``, as ``classifier(clip)`` returns it), and, for the input checks, its
        waveform at ``rate`` and the speech seconds the VAD found in it (where it ran)."""
        if isinstance(scores, list):
            if not all(isinstance(d, dict) and {"label", "score"} <= d.keys() for d in scores):
                raise ValueError(
                    "scores: expected {label: score} or the pipeline's [{'label', 'score'}, ...] of one clip"
                )
            scores = {d["label"]: d["score"] for d in scores}
        if not scores:
            raise ValueError("scores: no label to decide on (the pipeline answered with top_k=0?)")
        emotion = max(scores, key=scores.get)
        score = float(scores[emotion])
        reason = self.out_of_range(wave, rate, speech_seconds)
        if reason is None and score < self.threshold:
            # rounded down: 0.398 against 0.40 read "top score 0.40 below 0.40"
            reason = f"top score {math.floor(score * 1000) / 1000:.3f} below {self.threshold:.2f}"
        return Verdict(UNCERTAIN if reason else emotion, score, emotion, reason)


DEFAULT_RULE = ConfidenceRule()
