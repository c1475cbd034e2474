"""Which recordings does the "uncertain" rule's band check call band-limited, at which cutoff?

    python bench/bench_band.py [--every 1]

Every clip of the real corpora (RAVDESS, EMO-DB, TESS, ASED), as recorded and as a telephone recording would reach
the model: an 8 kHz file (plain 16-bit, mu-law and GSM 6.10, the codecs of phone lines and call-centre archives,
written and read by libsndfile, resampled to 16 kHz with soxr as the pipeline does), the corrupted suite's phone line
(8 kHz and a 300-3400 Hz band-pass), a 300-3400 Hz band-pass alone at 16 kHz, and the suite's low-rate MP3 and Opus
(lossy at 16 kHz). For each, the share of spectral energy above each cutoff (``hf_ser.confidence.high_band_share``):
its smallest, median and largest value, and how many clips fall under the rule's ``min_high_band``. The rule must
flag the 8 kHz recordings and leave the 16 kHz ones alone. Prints tables and a BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import print_json_line, print_table  # noqa: E402

CORPORA = ("ravdess", "emodb", "tess", "ased")
CUTOFFS = (3800.0, 4000.0)
RATE, LINE_RATE = 16000, 8000


def eight_khz_file(wave: np.ndarray, subtype: str) -> np.ndarray:
    """``wave`` as an 8 kHz WAV of ``subtype`` would reach the model: written, read, resampled to 16 kHz."""
    import soundfile as sf
    import soxr

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(soxr.resample(wave, RATE, LINE_RATE), -1, 1), LINE_RATE, format="WAV", subtype=subtype)
    buffer.seek(0)
    line, _ = sf.read(buffer, dtype="float32")
    return soxr.resample(line, LINE_RATE, RATE)


def variants() -> dict:
    from hf_ser.data.corruptions import Codec, TelephoneBand

    return {  # recording -> what it does to a 16 kHz waveform
        "as recorded (16 kHz)": lambda w: w,
        "MP3, 16 kbit/s (suite)": lambda w: Codec("mp3", 0.95)(w, RATE),
        "Opus, 8 kbit/s (suite)": lambda w: Codec("opus", 1.0)(w, RATE),
        "8 kHz file, PCM 16-bit": lambda w: eight_khz_file(w, "PCM_16"),
        "8 kHz file, mu-law": lambda w: eight_khz_file(w, "ULAW"),
        "8 kHz file, GSM 6.10": lambda w: eight_khz_file(w, "GSM610"),
        "phone line (suite: 8 kHz, 300-3400 Hz)": lambda w: TelephoneBand()(w, RATE),
        "300-3400 Hz band-pass at 16 kHz": band_pass,
    }


def band_pass(wave: np.ndarray) -> np.ndarray:
    """The robustness bench's "telephone (300-3400 Hz)" equaliser (audiomentations' high- and low-pass filters at
    16 kHz, no 8 kHz line): its gentle roll-off leaves energy above 4 kHz, so the spectral check may not catch it."""
    from bench_robustness import equalisers

    return equalisers()["telephone (300-3400 Hz)"](wave, RATE)


def main() -> None:
    from hf_ser.audio import load_audio
    from hf_ser.confidence import DEFAULT_RULE, high_band_share
    from hf_ser.data.corpora import load_corpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--every", type=int, default=1, help="every n-th clip of each corpus (1: all)")
    args = parser.parse_args()

    kinds = variants()
    shares = {kind: {cutoff: [] for cutoff in CUTOFFS} for kind in kinds}
    clips = 0
    for corpus in CORPORA:
        paths = load_corpus(corpus, args.corpora_dir / corpus)["audio"][:: args.every]
        for path in paths:
            wave, _ = load_audio(path, RATE)
            clips += 1
            for kind, change in kinds.items():
                heard = change(wave)
                for cutoff in CUTOFFS:
                    shares[kind][cutoff].append(high_band_share(heard, RATE, cutoff))
    floor = DEFAULT_RULE.min_high_band
    rows = []
    payload: dict[str, dict] = {"flagged": {}, "smallest": {}, "largest": {}}
    for kind in kinds:
        for part in payload.values():
            part[kind] = {}
        for cutoff in CUTOFFS:
            values = np.asarray(shares[kind][cutoff])
            flagged = float(np.mean(values < floor))
            payload["flagged"][kind][f"{cutoff:g}"] = flagged
            payload["smallest"][kind][f"{cutoff:g}"] = float(values.min())
            payload["largest"][kind][f"{cutoff:g}"] = float(values.max())
            rows.append(
                [
                    kind,
                    f"{cutoff / 1000:.1f} kHz",
                    f"{values.min():.1e}",
                    f"{np.median(values):.1e}",
                    f"{values.max():.1e}",
                    f"{100 * flagged:.1f} %",
                ]
            )
    print_table(
        f"Share of energy above the cutoff, {clips} clips of {', '.join(CORPORA)} (flagged: under {floor:g})",
        ["recording", "cutoff", "smallest", "median", "largest", "flagged band-limited"],
        rows,
    )
    print_json_line(
        "band", {"clips": clips, "min_high_band": floor, "cutoff_hz": DEFAULT_RULE.band_cutoff_hz, **payload}
    )


if __name__ == "__main__":
    main()
