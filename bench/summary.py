"""The README's benchmark table, generated from the BENCH_JSON lines kept in ``bench/results/*.txt``.

    python bench/summary.py [--results bench/results] [--readme README.md] [--check]

Every figure the README quotes from a bench comes from here, so it cannot drift from the kept outputs: rerun a bench
(``python bench/bench_x.py > bench/results/x.txt``), then this script. ``--check`` writes nothing and exits 1 when
the README's block differs from what the results give. One row per BENCH_JSON line; a bench whose ``bench`` name has
no row format here is an error (add one to ``ROWS``), never left out. Files without a BENCH_JSON line (the ensemble
table, which docs/RESULTS.md renders) are named under the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hf_ser.publish.results_page import replace_block  # noqa: E402

START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
PREFIX = "BENCH_JSON "
TRIM_CONDITIONS = ("as recorded", "1 s silence each side", "2 s faint noise each side")
KEY_CONDITIONS = ("telephone", "white SNR 10", "reverb RT60 0.6 s", "babble SNR 10")


def _targets(record: dict) -> str:
    """The bench's own targets, each met or missed, as it judged them."""
    targets = record.get("targets") or {}
    return "".join(f"; target {name}: {'met' if met else '**missed**'}" for name, met in sorted(targets.items()))


def _models(r: dict) -> str:
    tiny, whisper = r["tiny"], r["whisper"]
    return (
        f"3 s clip: tiny {tiny['ms_per_clip']:.1f} ms, Whisper-base {whisper['ms_per_clip']:.1f} ms "
        f"({whisper['ms_per_clip'] / tiny['ms_per_clip']:.0f}x); {tiny['hours_per_minute']:.1f} vs "
        f"{whisper['hours_per_minute']:.2f} hours of audio per minute; peak {tiny['peak_mb']:.0f} vs "
        f"{whisper['peak_mb']:.0f} MB; {tiny['parameters']:,} vs {whisper['parameters']:,} parameters"
    )


def _cuda(r: dict) -> str:
    tiny, whisper, fit = r["models"]["tiny"], r["models"]["whisper"], r["training"]

    def faster(side: dict, key: str) -> float:
        a, c = side["accelerator"][key], side["cpu"][key]
        return c / a if key == "ms_per_clip" else a / c

    return (
        f"{r['device']} against the same machine's CPU ({r['machine']}): Whisper-base default "
        f"{whisper['accelerator']['ms_per_clip']:.1f} ms per 3 s clip ({faster(whisper, 'ms_per_clip'):.1f}x), "
        f"{whisper['accelerator']['hours_per_minute']:.1f} hours of audio per minute at batch {r['batch_size']} "
        f"({faster(whisper, 'hours_per_minute'):.1f}x); tiny {faster(tiny, 'ms_per_clip'):.1f}x / "
        f"{faster(tiny, 'hours_per_minute'):.1f}x (the CPU is faster for it); encoder states for training "
        f"{fit['accelerator']['encoder_clips_per_s']:.0f} clips/s ({faster(fit, 'encoder_clips_per_s'):.0f}x), "
        f"head training steps {faster(fit, 'head_steps_per_s'):.1f}x; same top label on "
        f"{100 * min(tiny['top_label_agreement'], whisper['top_label_agreement']):.0f} % of clips, scores within "
        f"{max(tiny['max_score_difference'], whisper['max_score_difference']):.0e}"
    )


def _inference(r: dict) -> str:
    return (
        f"MFCC features {r['speedup']:.1f}x librosa's; model forward {r['speedup_b1']:.0f}x wav2vec2-base at batch 1, "
        f"{r['speedup_b32']:.0f}x at 32; pipeline median {r['pipeline_median_ms']:.1f} ms per clip" + _targets(r)
    )


def _deploy(r: dict) -> str:
    onnx, int8, torch = r["onnx"], r["onnx int8"], r["torch"]
    return (
        f"CLI cold start: ONNX {onnx['cold_start_speedup']:.1f}x faster than torch ({onnx['cold_start_s']:.2f} vs "
        f"{torch['cold_start_s']:.2f} s), int8 {int8['cold_start_speedup']:.1f}x; peak {onnx['peak_mb']:.0f} vs "
        f"{torch['peak_mb']:.0f} MB; latency {onnx['latency_ms']:.1f} vs {torch['latency_ms']:.1f} ms" + _targets(r)
    )


def _batch(r: dict) -> str:
    return (
        f"{r['files']} files: {r['batch_hours_per_min']:.1f} hours of audio per minute, "
        f"{r['loop_s'] / r['batch_s']:.2f}x a loop of pipeline calls; a {r['long_hours']:.2f}-hour recording "
        f"through --segments at {r['long_hours'] * 3600 / r['segments_s']:.0f}x real time, "
        f"{r['segments_peak_mb']:.0f} MB peak"
    )


def _ray(r: dict) -> str:
    return (
        f"{r['backend']} backend, {r['files']} files on {r['cores']} cores: Ray Data "
        f"{r['ray_hours_per_min'] / r['local_hours_per_min']:.2f}x the local batch run "
        f"({r['ray_warm_hours_per_min'] / r['local_hours_per_min']:.2f}x with a warm cluster); "
        f"same label on {r['same_label']} of {r['files']}"
    )


def _training(r: dict) -> str:
    return f"the fast recipe takes {r['speedup_per_epoch']:.1f}x less time per epoch than the v0.1 recipe"


def _robustness(r: dict) -> str:
    scope = (
        "each model's own test speakers" if r["held_out"] else "RAVDESS (some heard in the Whisper default's training)"
    )
    parts = []
    for model, agreement in sorted(r["agreement"].items()):
        conditions = ", ".join(
            f"{c} {100 * agreement[c]:.1f} ({100 * r['uncertain'][model][c]:.0f} % uncertain)" for c in KEY_CONDITIONS
        )
        parts.append(f"{model}: worst gain −24…+6 dB {100 * r['worst_-24_to_+6'][model]:.1f}; {conditions}")
    clips = "/".join(str(n) for n in sorted(set(r["clips"].values())))
    return f"top-label agreement (%) on {clips} clips of {scope}: " + "; ".join(parts)


def _level(r: dict) -> str:
    res = r["results"]
    agreement = ", ".join(
        f"{g} dB {res[f'gain {g} dB, one level']['agreement']:.1f} "
        f"({res[f'gain {g} dB, as recorded']['agreement']:.1f})"
        for g in ("-24", "-12", "+6")
    )
    return (
        f"{r['model']}, {r['clips']} validation clips, one level ({r['level_dbfs']:.1f} dBFS) vs as recorded: "
        f"agreement {agreement}; UAR at 0 dB {res['gain +0 dB, one level']['uar']:.1f} "
        f"({res['gain +0 dB, as recorded']['uar']:.1f})"
    )


def _duration(r: dict) -> str:
    res = r["results"]
    lengths = ", ".join(
        f"{k} {v['accuracy']:.1f} ({v['mean_top_score']:.2f})" for k, v in res.items() if k != "whole clip"
    )
    whole = res["whole clip"]
    by_length = "; ".join(
        f"{k} {v['accuracy']:.1f} ({v['mean_top_score']:.2f}, {v['clips']})"
        for k, v in r.get("whole_by_length", {}).items()
    )
    padded = "; ".join(
        f"{k} {v['accuracy']:.1f}, uncertain {v['uncertain_by_length']:.0f} % by length, "
        f"{v['uncertain_by_speech']:.0f} % by speech time"
        for k, v in r.get("padded_speech", {}).items()
    )
    return (
        f"{r['model']}, {r['clips']} validation clips cut to excerpts: accuracy (mean top score) {lengths}; whole clip "
        f"{whole['accuracy']:.1f} ({whole['mean_top_score']:.2f}); answered uncertain at 0.5 s "
        f"{res['0.5 s']['uncertain']:.1f} %"
        + (f"; whole clips by length (clips): {by_length}" if by_length else "")
        + (f"; speech inside near-silence: {padded}" if padded else "")
    )


def _adaptation(r: dict) -> str:
    res = r["measured"]

    def clips(name: str) -> float:  # "4 clips" by its number (the JSON line's keys are sorted as text)
        return float(name.split()[0]) if name[0].isdigit() else float("inf")

    adapted = sorted((k for k in res if k != "reference"), key=clips)
    curve = ", ".join(f"{k} {res[k]['accuracy']:.1f}" for k in adapted)
    return (
        f"{r['model']} adapted on k clips of each of its {r['speakers']} speakers, accuracy on their other "
        f"{r['evaluation_clips']} clips: {curve}; {r['reference']} (not adapted) {res['reference']['accuracy']:.1f}"
    )


def _vad(r: dict) -> str:
    corpora = "; ".join(
        f"{name} {c.get('under 0.1 s at 0.5', 0)} of {c['clips']} under 0.1 s at 0.5, "
        f"{c.get('no speech', 0)} left 'no speech'"
        for name, c in r["corpora"].items()
    )
    loudest = max(r["non_speech_peak"].items(), key=lambda kv: kv[1])
    through = r["let_through"]
    return (
        f"real clips through the VAD: {corpora}; synthetic non-speech peaks at most {loudest[1]:.2f} ({loudest[0]}), "
        f"speech evidence {r['speech_evidence']}; {r['model']} right on {through['right']} of the "
        f"{through['clips']} clips let through (mean top score {through['mean_top_score']:.2f}), answered 'uncertain'"
    )


def _band(r: dict) -> str:
    cutoff = f"{r['cutoff_hz']:g}"
    cells = ", ".join(
        f"{kind} {100 * by_cutoff[cutoff]:.1f} (at 3.8 kHz {100 * by_cutoff['3800']:.1f})"
        for kind, by_cutoff in r["flagged"].items()
    )
    return (
        f"share (%) of {r['clips']} real clips the band check calls band-limited (under {r['min_high_band']:g} of "
        f"the energy above {r['cutoff_hz'] / 1000:.1f} kHz): {cells}"
    )


def _dc(r: dict) -> str:
    cells = []
    for model, res in r["results"].items():
        settings = list(dict.fromkeys(key.split(", offset")[0] for key in res))
        agreement = " / ".join(
            f"{setting} " + ", ".join(f"{res[f'{setting}, offset {o:g}']['agreement']:.1f}" for o in r["offsets"][1:])
            for setting in settings
        )
        cells.append(f"{model} ({r['clips'][model]} validation clips): {agreement}")
    offsets = ", ".join(f"{100 * o:g}" for o in r["offsets"][1:])
    return (
        f"top-label agreement (%) with the clip as recorded at a DC offset of {offsets} % of full scale: "
        + "; ".join(cells)
    )


def _hum(r: dict) -> str:
    cells = []
    for model, by_cut in r["results"].items():
        for cut, res in sorted(by_cut.items(), key=lambda item: item[0] != "none"):  # as the models run first
            hums = ", ".join(f"{k} {v:.1f}" for k, v in res.items() if k != "clean_uar")
            cells.append(
                f"{model} ({r['clips'][model]} validation clips), cut {cut}: clean UAR {res['clean_uar']:.1f}; {hums}"
            )
    return "mains hum under the clip's RMS, top-label agreement (%) with the clip without it: " + "; ".join(cells)


def _reverb(r: dict) -> str:
    cells = []
    for model, res in r["results"].items():
        clean, room = res["clean"], res["suite room (RT60 0.6 s, 2 m)"]
        cells.append(
            f"{model} ({r['clips'][model]} validation clips): UAR clean {clean['uar']:.1f}, "
            f"suite room {room['uar']:.1f}; flagged clean {clean['flagged_3.0']:.0f} %, "
            f"suite room {room['flagged_3.0']:.0f} %; accuracy of the room's answered clips "
            f"{room['answered_accuracy']:.1f} without the check, {room['answered_accuracy_3.0']:.1f} with it"
        )
    return "a blind reverberation check (SRMR under 3.0 answered 'uncertain'), not kept: " + "; ".join(cells)


def _held_out_suite(r: dict) -> str:
    cells = []
    for model, res in r["results"].items():
        lost = ", ".join(f"{c} {res[c]['uar_lost']:.1f}" for c in KEY_CONDITIONS)
        cells.append(
            f"{model} ({r['models'][model]['clips']} clips of {r['models'][model]['speakers']} test speakers): clean "
            f"UAR {res['clean']['uar']:.1f}, ECE {res['clean']['ece']:.3f} (a calibrated model's "
            f"{res['clean']['ece_floor']:.3f}); UAR lost: {lost}; phone-line agreement "
            f"{res['telephone']['agreement']:.1f} % ({res['telephone']['uncertain']:.0f} % uncertain)"
        )
    return "the bundled defaults themselves under the corrupted suite: " + "; ".join(cells)


def _float_scale(r: dict) -> str:
    cells = []
    for model, res in r["results"].items():
        by_gain = [(f"x{g:g}", res[f"x{g:g}"]) for g in r["gains"][1:]]
        scales = ", ".join(f"{k} {v['agreement']:.1f} (refused {v['refused']:.0f})" for k, v in by_gain)
        cells.append(f"{model} ({r['clips'][model]} validation clips): {scales}")
    return (
        "float samples scaled past full scale (unclipped), top-label agreement (%) with the clip as recorded with the "
        f"input check off, and the share refused by it (peak over {r['max_float_peak']:g}): " + "; ".join(cells)
    )


def _trim(r: dict) -> str:
    cells = []
    for model, res in r["results"].items():
        settings = sorted({key.split(", ")[0] if key.startswith("none") else key.rsplit(", ", 1)[0] for key in res})
        for setting in sorted(settings, key=lambda name: name != "none"):
            uar = " / ".join(f"{res[f'{setting}, {c}']['uar']:.1f}" for c in TRIM_CONDITIONS)
            cells.append(f"{model} trim {setting}: {uar}")
    clips = ", ".join(f"{m} {n}" for m, n in r["clips"].items())
    return (
        f"UAR on validation clips ({clips}) as recorded / with 1 s silence each side / 2 s faint noise each side: "
        + "; ".join(cells)
    )


def _test_time(r: dict) -> str:
    res = r["results"]
    names = {"none": "as is", "dereverberation": "WPE", "phone view": "phone view"}
    names |= {k: k for k in res["clean"] if k.startswith("trim ")}
    remedies = [k for k in names if k in res["clean"]]
    cells = ", ".join(
        f"{c} " + " / ".join(f"{res[c][k]['uar']:.1f}" for k in remedies)
        for c in ("clean", "reverb RT60 0.6 s", "telephone")
    )
    return f"{r['model']}, {r['clips']} validation clips, UAR {' / '.join(names[k] for k in remedies)}: {cells}"


def _long(r: dict) -> str:
    parts = []
    for model in sorted(k for k in r if isinstance(r[k], dict) and "results" in r[k]):
        res = r[model]["results"]
        whole = res["whole clips, one emotion"]
        lengths = sorted({k.split(",")[0] for k in res if not k.startswith("whole")}, key=lambda k: float(k[:-2]))
        one = ", ".join(f"{k} {res[f'{k}, one emotion']['accuracy']:.1f}" for k in lengths)
        mixed = ", ".join(
            f"{k} {res[f'{k}, mixed']['answered']:.0f} % ({res[f'{k}, mixed']['mean_top_score']:.2f})" for k in lengths
        )
        parts.append(
            f"{model} ({r[model]['speakers']} validation speakers): one emotion joined, accuracy {one} (whole clips "
            f"{whole['accuracy']:.1f}); several emotions joined, answered with a label {mixed}"
        )
    return "; ".join(parts)


ROWS: dict[str, Callable[[dict], str]] = {
    "models": _models,
    "cuda": _cuda,
    "inference": _inference,
    "deploy": _deploy,
    "batch": _batch,
    "ray": _ray,
    "training": _training,
    "robustness": _robustness,
    "level": _level,
    "duration": _duration,
    "test_time": _test_time,
    "adaptation": _adaptation,
    "vad": _vad,
    "band": _band,
    "dc": _dc,
    "hum": _hum,
    "reverb": _reverb,
    "held_out_suite": _held_out_suite,
    "trim": _trim,
    "float_scale": _float_scale,
    "long": _long,
}


def records(results: Path) -> tuple[list[tuple[str, dict]], list[str]]:
    """(file name, BENCH_JSON record) for every line of every ``*.txt``, and the files that have none."""
    found, without = [], []
    for path in sorted(results.glob("*.txt")):
        lines = [line[len(PREFIX) :] for line in path.read_text().splitlines() if line.startswith(PREFIX)]
        if not lines:
            without.append(path.name)
        found += [(path.name, json.loads(line)) for line in lines]
    return found, without


def table_lines(results: Path) -> list[str]:
    found, without = records(results)
    lines = ["| output | what it measured |", "|---|---|"]
    for name, record in found:
        row = ROWS.get(record["bench"])
        if row is None:
            raise ValueError(f"{results / name}: no row format for bench {record['bench']!r} in bench/summary.py ROWS")
        lines.append(f"| `{name}` | {row(record)} |")
    if without:
        lines += ["", "Without a BENCH_JSON line: " + ", ".join(f"`{n}`" for n in without) + "."]
    return lines


def with_table(text: str, lines: list[str], readme: Path) -> str:
    """``text`` with its benchmark block filled as the README's other generated blocks are."""
    if START not in text or END not in text:
        raise ValueError(f"{readme}: no {START} … {END} block to fill")
    return replace_block(text, START, END, lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's table is stale; write nothing")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    updated = with_table(text, table_lines(args.results), args.readme)
    if args.check:
        if updated != text:
            print(f"{args.readme}: the benchmark table is stale; run python bench/summary.py", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(updated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
