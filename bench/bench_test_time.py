"""Can the room and the phone line be mended at inference, without training again? Three remedies, measured.

    python bench/bench_test_time.py --model runs/results/<experiment>/seed_0/fold_0 [--remedies none "trim 60 dB"]

Measured on the model's **validation** speakers (those its ``metrics.json`` names, never its test speakers, so a
choice made on these numbers is not made on them), under the corrupted suite's conditions (hf_ser.data.corruptions,
at its fixed seeds; babble from the model's own training speakers, as the suite makes it):

- **dereverberation**: every clip through single-channel WPE (weighted prediction error, Nakatani et al. 2010;
  ``nara_wpe``, the maintained implementation) before the model, since a recording's room is not known;
- **phone view**: the model's probabilities averaged over the clip and its telephone-band copy (test-time
  augmentation), so a clip and its phone-line version share one of their two views.
- **trim 50 / 60 dB**: the silence at each clip's ends cut (the extractor's own ``trim_db`` step, 0.5 s kept each side;
  ser-general answers with 50 dB), to see what the cut does under these conditions to models trained on whole clips.

Prints UAR and top-label agreement with the same remedy's answer on the clean clip, per condition and remedy, as a
table and a BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import model_speakers, print_json_line, print_table  # noqa: E402

CONDITIONS = ("telephone", "reverb RT60 0.6 s", "white SNR 10", "babble SNR 10", "mu-law", "opus 8 kbit/s")
REMEDIES = ("none", "dereverberation", "phone view", "trim 50 dB", "trim 60 dB")
TRIM_MARGIN = 0.5  # seconds kept each side by the "trim" remedies


def dereverberate(wave: np.ndarray, taps: int = 10, delay: int = 3, iterations: int = 3) -> np.ndarray:
    """``wave`` (mono) through single-channel WPE in the STFT domain (512-sample frames, hop 128; nara_wpe's
    recommended settings for 16 kHz), trimmed or padded back to its length."""
    try:
        from nara_wpe.utils import istft, stft
        from nara_wpe.wpe import wpe
    except ImportError as err:
        raise ImportError("dereverberation needs nara_wpe: pip install 'hf-ser[bench]'") from err

    wave = np.asarray(wave, np.float64)
    spectrum = stft(wave[None], size=512, shift=128).transpose(2, 0, 1)  # (bins, channels, frames)
    dry = wpe(spectrum, taps=taps, delay=delay, iterations=iterations, statistics_mode="full")
    out = istft(dry.transpose(1, 2, 0), size=512, shift=128)[0][: len(wave)]
    return np.pad(out, (0, len(wave) - len(out))).astype(np.float32)


def main() -> None:
    from sklearn.metrics import balanced_accuracy_score

    from hf_ser import load_classifier
    from hf_ser.audio import load_audio
    from hf_ser.data.corruptions import TelephoneBand, babble_sources, suite

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ser-whisper-general")
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--remedies", nargs="+", choices=REMEDIES, default=list(REMEDIES[:3]))
    args = parser.parse_args()
    remedies = ["none", *(r for r in args.remedies if r != "none")]  # "none" first: the others are read against it

    speakers = model_speakers(args.model, args.corpora_dir)
    clf = load_classifier(args.model)
    rate = clf.feature_extractor.sampling_rate
    labels = [clf.model.config.id2label[i] for i in range(len(clf.model.config.id2label))]
    names = speakers.validation.features["emotion"].names
    truth = np.asarray([labels.index(names[i]) for i in speakers.validation["emotion"]])
    waves = [load_audio(a, rate)[0] for a in speakers.validation["audio"]]
    conditions = suite(babble_sources(speakers.train, rate))
    phone = TelephoneBand()

    def probabilities(batch: list[np.ndarray]) -> np.ndarray:
        scores = [{r["label"]: r["score"] for r in out} for out in clf(batch, top_k=None, batch_size=16)]
        return np.asarray([[s[label] for label in labels] for s in scores])

    seconds = {"dereverberation": 0.0}

    def remedied(remedy: str, batch: list[np.ndarray]) -> np.ndarray:
        if remedy == "dereverberation":
            start = time.perf_counter()
            batch = [dereverberate(w) for w in batch]
            seconds["dereverberation"] += time.perf_counter() - start
        # every remedy sets the cut, so a model that ships with one is measured without it unless a "trim" remedy
        clf.feature_extractor.trim_db = float(remedy.split()[1]) if remedy.startswith("trim ") else None
        clf.feature_extractor.trim_margin = TRIM_MARGIN
        scores = probabilities(batch)
        if remedy == "phone view":
            scores = (scores + probabilities([phone(samples=w, sample_rate=rate) for w in batch])) / 2
        return scores.argmax(axis=1)

    measured: dict[str, dict[str, dict[str, float]]] = {}
    clean: dict[str, np.ndarray] = {}
    for condition in ("clean", *CONDITIONS):
        batch = waves if condition == "clean" else [conditions[condition](samples=w, sample_rate=rate) for w in waves]
        for remedy in remedies:
            predicted = remedied(remedy, batch)
            clean.setdefault(remedy, predicted)  # clean comes first
            measured.setdefault(condition, {})[remedy] = {
                "uar": 100 * balanced_accuracy_score(truth, predicted),
                "agreement": 100 * float(np.mean(predicted == clean[remedy])),
            }
    header = ["condition", *(f"{r}: UAR / agreement" for r in remedies)]
    rows = [[c, *(f"{v[r]['uar']:.1f} / {v[r]['agreement']:.1f} %" for r in remedies)] for c, v in measured.items()]
    per_clip = seconds["dereverberation"] / ((1 + len(CONDITIONS)) * len(waves))
    wpe = f" (WPE {per_clip:.3f} s a clip on this machine)" if "dereverberation" in remedies else ""
    print_table(
        f"{args.model} on its {len(waves)} validation clips{wpe}",
        header,
        rows,
    )
    print_json_line("test_time", {"model": str(args.model), "clips": len(waves), "results": measured})


if __name__ == "__main__":
    main()
