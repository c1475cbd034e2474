"""Real-world recording conditions as waveform transforms: telephone band, lossy codecs, additive noise,
reverberation and clipping (in the spirit of ImageNet-C: a fixed suite scored at fixed seeds).

Each transform is a small audiomentations transform (``BaseWaveformTransform``) with validated parameters, called
as ``transform(samples, sample_rate)``, so the same classes serve the corrupted test suite (:data:`SUITE`) and training
augmentation (``augmentation.copies: [[{name: TelephoneBand, p: 1.0}]]``: :mod:`hf_ser.data.augment` looks names up
here after audiomentations). They exist because audiomentations has no telephone channel (resampling to 8 kHz),
no in-memory codec round trip through libsndfile (its Mp3Compression needs the LAME backends), no μ-law, no babble
from a corpus's own speakers and no room simulation without impulse-response files. Codecs go through soundfile
(libsndfile writes MP3, Ogg Opus and μ-law WAV); rooms through pyroomacoustics (the ``bench`` and ``dev``
extras).
"""

from __future__ import annotations

import io

import numpy as np
from audiomentations.core.transforms_interface import BaseWaveformTransform


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class TelephoneBand(BaseWaveformTransform):
    """A phone line: resampled to ``line_rate`` and band-passed to ``low_hz`` … ``high_hz``, then back."""

    def __init__(self, line_rate: int = 8000, low_hz: float = 300.0, high_hz: float = 3400.0, p: float = 1.0):
        super().__init__(p)
        self.line_rate, self.low_hz, self.high_hz = line_rate, low_hz, high_hz
        _check(self.line_rate >= 4000, f"line_rate must be >= 4000 Hz, got {self.line_rate}")
        _check(
            0 < self.low_hz < self.high_hz < self.line_rate / 2,
            f"need 0 < low_hz < high_hz < line_rate/2, got {self.low_hz}, {self.high_hz}, {self.line_rate}",
        )

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        import soxr
        from scipy.signal import butter, sosfilt

        line = soxr.resample(np.asarray(samples, np.float32), sample_rate, self.line_rate)
        sos = butter(4, [self.low_hz, self.high_hz], btype="bandpass", fs=self.line_rate, output="sos")
        line = sosfilt(sos, line).astype(np.float32)
        return _same_length(soxr.resample(line, self.line_rate, sample_rate), len(samples))


CODECS = {
    # name: (libsndfile format, subtype, compression level or None); levels measured on 16 kHz speech
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "opus": ("OGG", "OPUS"),
    "mulaw": ("WAV", "ULAW"),
}


class Codec(BaseWaveformTransform):
    """A lossy codec round trip in memory: ``mp3`` or ``opus`` at ``compression_level`` (0 best … 1 smallest;
    at 16 kHz MP3 0.95 is about 16 kbit/s, Opus 1.0 about 8 kbit/s), or ``mulaw`` (G.711's 8-bit companding)."""

    def __init__(self, codec: str = "mp3", compression_level: float = 0.95, p: float = 1.0):
        super().__init__(p)
        self.codec, self.compression_level = codec, compression_level
        _check(self.codec in CODECS, f"codec must be one of {sorted(CODECS)}, got {self.codec!r}")
        _check(0 <= self.compression_level <= 1, f"compression_level must be in [0, 1], got {self.compression_level}")

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        import soundfile as sf

        fmt, subtype = CODECS[self.codec]
        options = {} if self.codec == "mulaw" else {"compression_level": self.compression_level}
        if self.codec == "mp3":
            options["bitrate_mode"] = "CONSTANT"
        buffer = io.BytesIO()
        sf.write(
            buffer, np.clip(samples, -1, 1).astype(np.float32), sample_rate, format=fmt, subtype=subtype, **options
        )
        buffer.seek(0)
        decoded, _ = sf.read(buffer, dtype="float32")
        return _same_length(decoded, len(samples))


class AddNoise(BaseWaveformTransform):
    """Additive noise at ``snr_db``: ``white`` Gaussian noise, or ``babble`` (``talkers`` other speakers'
    clips summed, taken from ``babble_sources``, the training side of the same corpus in the test suite).

    With ``max_snr_db`` the SNR of each clip is drawn from ``[snr_db, max_snr_db]``. ``seed=None`` draws from
    numpy's global generator, which training augmentation seeds per (seed, utterance, copy); a fixed ``seed``
    (the test suite) gives the same noise sequence whatever else ran before. As a training copy, a babble step
    without ``babble_sources`` is given clips of the training split's own speakers (:mod:`hf_ser.data.augment`).
    """

    def __init__(
        self,
        snr_db: float = 10.0,
        kind: str = "white",
        talkers: int = 4,
        seed: int | None = 0,
        babble_sources: list | None = None,
        max_snr_db: float | None = None,
        p: float = 1.0,
    ):
        super().__init__(p)
        self.snr_db, self.kind, self.talkers, self.seed = snr_db, kind, talkers, seed
        self.max_snr_db = max_snr_db
        self.babble_sources = list(babble_sources or [])
        _check(-10 <= self.snr_db <= 60, f"snr_db must be in [-10, 60], got {self.snr_db}")
        _check(
            max_snr_db is None or self.snr_db <= max_snr_db <= 60,
            f"max_snr_db must be in [snr_db={self.snr_db}, 60], got {max_snr_db}",
        )
        _check(self.kind in ("white", "babble"), f"kind must be 'white' or 'babble', got {self.kind!r}")
        _check(
            self.kind == "white" or len(self.babble_sources) >= self.talkers,
            f"babble needs babble_sources with at least talkers={self.talkers} clips, got {len(self.babble_sources)}",
        )
        self._rng = np.random.default_rng(self.seed) if self.seed is not None else None

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        rng = self._rng or np.random.default_rng(np.random.randint(0, 2**31))  # per copy, from the global seed
        samples = np.asarray(samples, np.float32)
        snr_db = self.snr_db if self.max_snr_db is None else float(rng.uniform(self.snr_db, self.max_snr_db))
        if self.kind == "white":
            noise = rng.standard_normal(len(samples)).astype(np.float32)
        else:
            noise = np.zeros(len(samples), np.float32)
            for i in rng.choice(len(self.babble_sources), self.talkers, replace=False):
                source = np.asarray(self.babble_sources[i], np.float32)
                source = np.tile(source, int(np.ceil(len(samples) / max(len(source), 1))))
                start = rng.integers(0, len(source) - len(samples) + 1)
                piece = source[start : start + len(samples)]
                noise += piece / (np.sqrt(np.mean(piece**2)) + 1e-9)
        signal_power = np.mean(samples**2) + 1e-12
        noise_power = np.mean(noise**2) + 1e-12
        return samples + noise * np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))


class Reverb(BaseWaveformTransform):
    """A simulated shoebox room (pyroomacoustics, image method) with reverberation time ``rt60`` seconds;
    the talker and the microphone ``distance`` metres apart. The output keeps the input's peak level.

    With ``max_rt60`` it is a range of rooms, for training: ``rooms`` rooms whose RT60s are evenly spaced over
    ``[rt60, max_rt60]``, each ``room``'s sizes scaled by a factor in [0.8, 1.3] and its own distance in
    [0.5 m, ``distance``] (drawn once, from ``room_seed``); each clip goes through one of them, drawn like
    :class:`AddNoise` draws its SNR (``seed=None``: numpy's global generator, seeded per training copy).
    """

    def __init__(
        self,
        rt60: float = 0.6,
        room: tuple = (6.0, 4.5, 3.0),
        distance: float = 2.0,
        max_rt60: float | None = None,
        rooms: int = 8,
        room_seed: int = 0,
        seed: int | None = None,
        p: float = 1.0,
    ):
        super().__init__(p)
        self.rt60, self.room, self.distance = rt60, tuple(room), distance
        self.max_rt60, self.rooms, self.room_seed, self.seed = max_rt60, rooms, room_seed, seed
        _check(len(self.room) == 3 and min(self.room) > 1.5, f"room must be 3 sizes > 1.5 m, got {room}")
        _check(0.1 <= self.rt60 <= 2.0, f"rt60 must be in [0.1, 2.0] s, got {self.rt60}")
        _check(0.2 <= self.distance < min(self.room[:2]) - 1, f"distance must fit in the room, got {self.distance}")
        _check(
            max_rt60 is None or self.rt60 <= max_rt60 <= 2.0, f"max_rt60 must be in [rt60={rt60}, 2.0], got {max_rt60}"
        )
        _check(1 <= self.rooms <= 64, f"rooms must be in [1, 64], got {self.rooms}")
        _check(
            max_rt60 is None or 0.8 * min(self.room) > 1.7,
            f"a range of rooms scales room down to 0.8 of its sizes: each must exceed 2.125 m, got {room}",
        )
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def room_settings(self) -> list[tuple[float, tuple, float]]:
        """``(rt60, room sizes, distance)`` of every room this transform uses (one without ``max_rt60``)."""
        if self.max_rt60 is None:
            return [(self.rt60, self.room, self.distance)]
        draw = np.random.default_rng(self.room_seed)
        settings = []
        for rt60 in np.linspace(self.rt60, self.max_rt60, self.rooms):
            size = tuple(float(x) for x in np.round(np.asarray(self.room) * draw.uniform(0.8, 1.3, 3), 2))
            distance = float(draw.uniform(0.5, min(self.distance, min(size[:2]) - 1.05)))
            settings.append((float(rt60), size, distance))
        return settings

    def impulse_response(self, sample_rate: int, index: int = 0) -> np.ndarray:
        """Room ``index``'s impulse response at ``sample_rate`` (simulated once per room and rate, then reused)."""
        cached = getattr(self, "_rirs", {})
        if (sample_rate, index) not in cached:
            cached[sample_rate, index] = self._simulate(sample_rate, *self.room_settings()[index])
            self._rirs = cached
        return cached[sample_rate, index]

    @staticmethod
    def _simulate(sample_rate: int, rt60: float, size: tuple, distance: float) -> np.ndarray:
        try:
            import pyroomacoustics as pra
        except ImportError as err:
            raise ImportError("Reverb needs pyroomacoustics: pip install 'hf-ser[bench]'") from err
        absorption, max_order = pra.inverse_sabine(rt60, list(size))
        room = pra.ShoeBox(list(size), fs=sample_rate, materials=pra.Material(absorption), max_order=max_order)
        source = [size[0] / 2 - distance / 2, size[1] / 2, 1.6]
        room.add_source(source)
        room.add_microphone([source[0] + distance, source[1], 1.2])
        room.compute_rir()
        return np.asarray(room.rir[0][0], np.float32)

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        from scipy.signal import fftconvolve

        samples = np.asarray(samples, np.float32)
        index = 0
        if self.max_rt60 is not None:  # one room of the range per clip
            index = int(self._rng.integers(self.rooms) if self._rng is not None else np.random.randint(self.rooms))
        rir = self.impulse_response(sample_rate, index)
        delay = int(np.argmax(np.abs(rir)))  # the direct path: keep the clip aligned
        wet = fftconvolve(samples, rir)[delay : delay + len(samples)].astype(np.float32)
        peak_in, peak_out = np.abs(samples).max(), np.abs(wet).max()
        return wet * (peak_in / peak_out) if peak_out > 0 else wet


class Clipping(BaseWaveformTransform):
    """An overdriven input: the clip brought to full scale, ``gain_db`` more gain, clipped at ±1."""

    def __init__(self, gain_db: float = 12.0, p: float = 1.0):
        super().__init__(p)
        self.gain_db = gain_db
        _check(0 < self.gain_db <= 40, f"gain_db must be in (0, 40], got {self.gain_db}")

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        samples = np.asarray(samples, np.float32)
        peak = np.abs(samples).max()
        if peak == 0:
            return samples
        return np.clip(samples / peak * 10 ** (self.gain_db / 20), -1.0, 1.0)


def _same_length(samples: np.ndarray, n: int) -> np.ndarray:
    samples = np.asarray(samples, np.float32)
    return samples[:n] if len(samples) >= n else np.pad(samples, (0, n - len(samples)))


TRANSFORMS = {cls.__name__: cls for cls in (TelephoneBand, Codec, AddNoise, Reverb, Clipping)}


def suite(babble_sources: list | None = None, seed: int = 0) -> dict[str, object]:
    """The corrupted test suite: name → transform, at fixed settings and seeds. Babble rows only with sources."""
    conditions: dict[str, object] = {
        "telephone": TelephoneBand(),
        "mp3 16 kbit/s": Codec("mp3", 0.95),
        "opus 8 kbit/s": Codec("opus", 1.0),
        "mu-law": Codec("mulaw"),
    }
    for snr in (20, 10, 5):
        conditions[f"white SNR {snr}"] = AddNoise(snr, "white", seed=seed)
    if babble_sources:
        for snr in (20, 10, 5):
            talkers = min(4, len(babble_sources))  # four talkers, fewer where training has fewer speakers
            conditions[f"babble SNR {snr}"] = AddNoise(snr, "babble", talkers, seed, babble_sources)
    conditions["reverb RT60 0.6 s"] = Reverb(0.6)
    conditions["clipping +12 dB"] = Clipping(12.0)
    return conditions


def condition_names() -> list[str]:
    """Every condition of :func:`suite` (babble included), in the suite's order."""
    return list(suite(babble_sources=[np.zeros(1, np.float32)] * 4))


def babble_sources(train, sampling_rate: int, speakers: int = 16, last: bool = False) -> list[np.ndarray]:
    """One clip each of up to ``speakers`` training speakers (the first of each by utterance id, or the ``last``:
    training augmentation takes those, so its babble is never the test suite's own clips), decoded."""
    from ..audio import decode_row
    from .splits import speaker_keys

    chosen: dict[str, int] = {}
    speakers_of, ids = speaker_keys(train), train["utterance_id"]
    for index in sorted(range(len(train)), key=ids.__getitem__, reverse=last):
        chosen.setdefault(speakers_of[index], index)
    rows = [train[i] for i in list(chosen.values())[:speakers]]
    return [decode_row(r["audio"], r.get("array"), r.get("sampling_rate"), sampling_rate) for r in rows]


def corrupt_split(dataset, condition: str, sampling_rate: int, sources: list[np.ndarray] | None = None, seed: int = 0):
    """The split with every clip under ``condition`` (decoded at ``sampling_rate`` into ``array``), at a fixed
    seed; the rows keep their labels and ids, so the scores compare clip by clip with the clean split."""
    from datasets import Sequence, Value

    from ..audio import decode_row

    transforms = suite(babble_sources=sources, seed=seed)
    if condition not in transforms:
        raise ValueError(f"unknown corruption {condition!r}; known: {', '.join(condition_names())}")
    transform = transforms[condition]

    def apply(row):
        wave = decode_row(row["audio"], row.get("array"), row.get("sampling_rate"), sampling_rate)
        return {"array": transform(samples=wave, sample_rate=sampling_rate), "sampling_rate": sampling_rate}

    features = dataset.features.copy()
    features["array"] = Sequence(Value("float32"))
    features["sampling_rate"] = Value("int32")
    return dataset.map(apply, features=features, load_from_cache_file=False, desc=f"corrupt: {condition}")
