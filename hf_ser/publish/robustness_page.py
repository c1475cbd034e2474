"""The real-world-audio part of docs/RESULTS.md: the corrupted suite, calibration and the "uncertain" trade-off,
rendered from the ``corrupted`` and ``calibration`` fields of result files (experiments of group "robustness")."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..confidence import DEFAULT_RULE
from ..training.results import MeanStd, PooledCalibration, ProtocolResult
from .variant_page import runs_by_seed_fold, variant_lines

# issue 18's targets on the default model: (condition, most UAR points lost)
DROP_TARGETS = {
    "telephone": 5.0,
    "white SNR 10": 8.0,
    "babble SNR 10": 8.0,
    "reverb RT60 0.6 s": 5.0,
}
AGREEMENT_TARGET = ("telephone", 0.90)
ECE_TARGET = 0.05


def _runs(record) -> list[ProtocolResult]:
    return list(record.seeds.values())


def _condition(record, condition: str, key: str, part: str = "corrupted") -> MeanStd | None:
    """Mean ± std over folds of one condition's ``key`` (averaged over seeds); None if it was not scored."""
    summaries = [s for r in _runs(record) if (s := getattr(r, part).get(condition)) is not None]
    if not summaries:
        return None
    values = [getattr(s, key) for s in summaries]
    return MeanStd(mean=float(np.mean([v.mean for v in values])), std=float(np.mean([v.std for v in values])))


def robustness_lines(
    records: dict,
    names: list[str],
    figure: Path | None = None,
    baselines: dict | None = None,
    plotted: list[str] | None = None,
) -> list[str]:
    """Tables (and the coverage figure, written to ``figure``) for the robustness experiments ``names``, beside
    the openSMILE baselines (``baselines``: baseline result dicts) that were scored under the same conditions. The
    figure draws ``plotted`` (the bundled defaults' recipes) where given: with every variant tried, its lines and
    legend hid one another; the calibration table has every experiment's figures."""
    smile = {k: b for k, b in (baselines or {}).items() if b.get("corrupted")}
    names = _scored(records, names)
    if not names:
        return []
    conditions = list(_runs(records[names[0]])[0].corrupted)
    lines = [
        "## Real-world audio: the corrupted test suite",
        "",
        "Every test fold (RAVDESS, 8 classes, 5 folds by actor) scored again under each recording condition of "
        "`hf_ser.data.corruptions.suite()` at a fixed seed: a phone line (8 kHz, 300–3400 Hz), MP3 at 16 kbit/s, "
        "Opus at 8 kbit/s, μ-law, white noise and babble (4 training-side speakers) at SNR 20/10/5 dB, a simulated "
        "room (pyroomacoustics, Sabine RT60 0.6 s, talker 2 m away) and +12 dB of clipping. One row per experiment (a "
        "screen, run on some folds only, says so) and per baseline; a cell is the UAR (%) under the condition, in "
        "brackets its change from the clean test clips in points, and after the dot the agreement: the share (%) of "
        "clips whose top label is the clean clip's. Training variants are compared on the 2 validation actors of each "
        "fold under the same conditions (`corrupted_validation` in the result files), never on test actors.",
        "",
        "| experiment | clean | " + " | ".join(conditions) + " |",
        "|---|---|" + "---|" * len(conditions),
    ]
    clean = {n: _clean_uar(records[n]) for n in names}
    for n in names:
        scores = [(_condition(records[n], c, "uar"), _condition(records[n], c, "agreement")) for c in conditions]
        percent = [None if uar is None else (100 * uar.mean, 100 * agree.mean) for uar, agree in scores]
        lines.append(_suite_row(f"{n}{_screen_scope(records[n])}", clean[n], percent))
    for b in smile.values():
        scores = [b["corrupted"].get(c) for c in conditions]
        percent = [None if s is None else (100 * s["uar"]["mean"], 100 * s["agreement"]["mean"]) for s in scores]
        lines.append(_suite_row(f"{_smile_name(b)} (baseline)", 100 * b["uar"]["mean"], percent))
    lines += ["", *variant_lines(records, names), "### Against the targets", "", *_target_table(records, names), ""]
    return [*lines, *_calibration_lines(records, names, figure, plotted)]


def _suite_row(label: str, clean: float, scores: list[tuple[float, float] | None]) -> str:
    """One experiment's or baseline's row of the suite table: clean UAR (%), then per condition
    ``"55.00 (-15.0) · 85"`` (UAR, its change from clean in points, top-label agreement %) or "–" if not scored."""
    cells = ["–" if s is None else f"{s[0]:.2f} ({s[0] - clean:+.1f}) · {s[1]:.0f}" for s in scores]
    return f"| {label} | {clean:.2f} | " + " | ".join(cells) + " |"


def _smile_name(baseline: dict) -> str:
    return baseline["method"].split(" functionals")[0].replace("openSMILE ", "") + " + SVM"


def _missed_by(gap: float, digits: int) -> str:
    """A positive shortfall at the table's precision; one too small to show says so instead of "missed by 0.000"."""
    step = 10.0**-digits
    return f"missed by {gap:.{digits}f}" if round(gap, digits) > 0 else f"missed by less than {step:.{digits}f}"


def _screen_scope(record) -> str:
    """For a screening record, ``" (screen: folds 0, 1; 1 seed(s))"``, else ``""``: a screen's test-actor figure
    beside a target reports those folds; it is not the target measured on the whole protocol."""
    if record.only_folds is None:
        return ""
    folds = ", ".join(str(f) for f in record.only_folds)
    return f" (screen: fold{'s' if len(record.only_folds) > 1 else ''} {folds}; {len(record.seeds)} seed(s))"


TARGET_TABLE = [
    "*measured*: the mean over every (seed, fold) run; *spread*: the standard deviation over those runs and their "
    "lowest and highest value, so a miss or a pass can be weighed against how much the folds differ.",
    "",
    "| experiment | measure | measured | spread | target | |",
    "|---|---|---|---|---|---|",
]


def _clean_uar(record) -> float:
    """Clean test UAR (%), the mean over the record's runs: what each condition's loss is measured from."""
    return 100 * np.mean([r.uar.mean for r in _runs(record)])


def _scored(records: dict, names: list[str]) -> list[str]:
    """Those of ``names`` with a result file whose runs were scored under the recording conditions."""
    return [n for n in names if n in records and _runs(records[n])[0].corrupted]


def readme_target_lines(records: dict, names: list[str]) -> list[str]:
    """The targets table of the robustness experiments ``names`` (those of the bundled defaults' recipes) for the
    README's generated block; empty if none of them has a result file."""
    names = _scored(records, names)
    return _target_table(records, names) if names else []


def _target_table(records: dict, names: list[str]) -> list[str]:
    """The targets table (its legend, header and a row per measure) of the robustness experiments ``names``."""
    rows = []
    for n in names:
        scope = _screen_scope(records[n])
        clean = _clean_uar(records[n])
        for condition, most in DROP_TARGETS.items():
            uar = _condition(records[n], condition, "uar")
            if uar is None:
                continue
            lost = clean - 100 * uar.mean
            verdict = "met" if lost <= most else _missed_by(lost - most, 1)
            spread = _spread(_per_run(records[n], condition, lost=True))
            rows.append(
                f"| {n} | UAR lost, {condition} | {lost:.1f} points | {spread} | ≤ {most:.0f} | {verdict}{scope} |"
            )
        condition, least = AGREEMENT_TARGET
        agree = _condition(records[n], condition, "agreement")
        if agree is not None:
            verdict = "met" if agree.mean >= least else _missed_by(100 * (least - agree.mean), 1)
            spread = _spread(_per_run(records[n], condition, lost=False))
            rows.append(
                f"| {n} | agreement, {condition} | {100 * agree.mean:.1f} % | {spread} | ≥ {100 * least:.0f} % "
                f"| {verdict}{scope} |"
            )
        ece = _ece(records[n])
        if ece is not None:
            verdict = "met" if ece.mean <= ECE_TARGET else _missed_by(ece.mean - ECE_TARGET, 3)
            if (floor := _ece_floor(records[n])) is not None:
                verdict += f" (perfectly calibrated on these clips: {floor.mean:.3f})"
            rows.append(
                f"| {n} | ECE, clean test | {ece.mean:.3f} | ± {ece.std:.3f} | ≤ {ECE_TARGET} | {verdict}{scope} |"
            )
        if (pooled := _pooled(records[n])) is not None:
            verdict = "met" if pooled.ece <= ECE_TARGET else _missed_by(pooled.ece - ECE_TARGET, 3)
            rows.append(
                f"| {n} | ECE, clean test, all folds' {pooled.clips} clips pooled | {pooled.ece:.3f} | – "
                f"| ≤ {ECE_TARGET} | {verdict} (perfectly calibrated on these clips: {pooled.floor:.3f}){scope} |"
            )
    return [*TARGET_TABLE, *rows]


def _per_run(record, condition: str, lost: bool) -> list[float]:
    """One value per (seed, fold) run, in points: the UAR lost under ``condition`` against the run's clean test clips
    (``lost``), or its top-label agreement with them."""
    tests, clean = runs_by_seed_fold(record, "test_conditions"), runs_by_seed_fold(record, "folds")
    if lost:
        return [100 * (clean[k].uar - t[condition].uar) for k, t in tests.items() if condition in t]
    return [100 * t[condition].agreement for t in tests.values() if condition in t]


def _spread(values: list[float]) -> str:
    """``"± 3.2 (2.1 to 12.5, 10 runs)"``; ``"–"`` without per-run values (a record from before they were kept)."""
    if not values:
        return "–"
    runs = f"{len(values)} run{'s' if len(values) > 1 else ''}"
    low, high = (round(v, 1) + 0.0 for v in (min(values), max(values)))  # + 0.0: -0.03 shows as 0.0, not -0.0
    return f"± {np.std(values):.1f} ({low:.1f} to {high:.1f}, {runs})"


def _ece(record, raw: bool = False) -> MeanStd | None:
    values = [c.test_ece_raw if raw else c.test_ece for r in _runs(record) for c in r.calibration.values()]
    return MeanStd.of(values) if values else None


def _ece_floor(record) -> MeanStd | None:
    """Per fold, the ECE a perfectly calibrated model would show on its test clips
    (:meth:`~hf_ser.training.results.Calibration.ece_floor`, as the cards compute it)."""
    values = []
    for run in _runs(record):
        clips = round(float(np.sum(run.confusion_matrix)) / max(len(run.folds), 1))
        values += [f for c in run.calibration.values() if (f := c.ece_floor(clips)) is not None]
    return MeanStd.of(values) if values else None


def _pooled(record) -> PooledCalibration | None:
    """ECE over every fold's test clips together (each clip scored once, by the fold that never heard its speaker),
    averaged over seeds; None unless the runs kept their clips' scores (``hf-ser results rescore`` adds them)."""
    pooled = [p for r in _runs(record) if (p := r.pooled_calibration()) is not None]
    if not pooled or len(pooled) != len(_runs(record)):
        return None
    mean = {k: float(np.mean([getattr(p, k) for p in pooled])) for k in ("ece", "floor")}
    return PooledCalibration(clips=pooled[0].clips, **mean)


def _coverage(record) -> list[tuple[float, float, float]]:
    """(threshold, coverage, accuracy) averaged over folds, for thresholds every fold has."""
    curves = [
        dict((t, (c, a)) for t, c, a in cal.test_coverage) for r in _runs(record) for cal in r.calibration.values()
    ]
    if not curves:
        return []
    shared = sorted(set.intersection(*(set(c) for c in curves)))
    return [(t, float(np.mean([c[t][0] for c in curves])), float(np.mean([c[t][1] for c in curves]))) for t in shared]


def _calibration_lines(
    records: dict, names: list[str], figure: Path | None, plotted: list[str] | None = None
) -> list[str]:
    lines = [
        '### Calibration and the "uncertain" answer',
        "",
        "Temperature scaling fitted per fold on its 2 validation actors (`config.temperature`); ECE (15 bins, "
        "top score) on the clean test actors before and after, and under the conditions with the fitted "
        f"temperature. At the default threshold ({DEFAULT_RULE.threshold} on the calibrated top score) the model "
        "answers *uncertain* on the rest: *answered* is the share of clean test clips that get an emotion, "
        "*accuracy answered* the accuracy on those.",
        "",
        "*ECE if calibrated perfectly*: what a flawless model would still score on the fold's test clips with the "
        "same top scores, from sampling alone (each clip right with probability equal to its score; "
        "`Calibration.ece_floor`, from each clip's score where the run kept them, else from the coverage curve): "
        "the part of the measured ECE that no calibration can remove.",
        "",
        "*ECE pooled*: the same over all folds' test clips together (each scored once, by the fold that never heard "
        "its speaker; 15 bins), with the perfectly calibrated model's ECE on as many clips in brackets: five times "
        "the clips, so sampling hides less.",
        "",
        "| experiment | temperature | ECE raw | ECE calibrated | ECE if calibrated perfectly | ECE pooled | "
        "ECE telephone | ECE white SNR 10 | answered | accuracy answered | accuracy all |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        record = records[n]
        temps = [c.temperature for r in _runs(record) for c in r.calibration.values()]
        raw, ece = _ece(record, raw=True), _ece(record)
        if not temps or raw is None or ece is None:
            continue
        curve = {t: (c, a) for t, c, a in _coverage(record)}
        answered = curve.get(round(DEFAULT_RULE.threshold, 2))
        everything = curve.get(0.0)
        phone, noise = _condition(record, "telephone", "ece"), _condition(record, "white SNR 10", "ece")
        floor = _ece_floor(record)
        floor_cell = f"{floor.mean:.3f} ± {floor.std:.3f}" if floor else "–"
        pooled = _pooled(record)
        floor_cell += f" | {pooled.ece:.3f} ({pooled.floor:.3f}; {pooled.clips} clips)" if pooled else " | –"
        lines.append(
            f"| {n} | {np.mean(temps):.2f} | {raw.mean:.3f} ± {raw.std:.3f} | {ece.mean:.3f} ± {ece.std:.3f} | "
            f"{floor_cell} | "
            f"{phone.mean if phone else float('nan'):.3f} | {noise.mean if noise else float('nan'):.3f} | "
            f"{100 * answered[0]:.0f} % | {100 * answered[1]:.1f} % | {100 * everything[1]:.1f} % |"
            if answered and everything
            else f"| {n} | {np.mean(temps):.2f} | {raw.mean:.3f} | {ece.mean:.3f} | {floor_cell} | – | – | – | – | – |"
        )
    lines += ["", *_condition_ece_lines(records, names)]
    drawn = [n for n in plotted or [] if n in names] or names
    if figure is not None and _plot_coverage(records, drawn, figure):
        which = "the bundled defaults' recipes" if drawn != names else "every experiment above"
        lines += [
            "",
            f"Coverage against accuracy on the clean test actors as the threshold rises, for {which} "
            f"(the dot: the default threshold {DEFAULT_RULE.threshold}).",
            "",
            f"![coverage against accuracy](results/{figure.name})",
            "",
        ]
    lines.append("")
    return lines


def _condition_ece_lines(records: dict, names: list[str]) -> list[str]:
    """ECE (calibrated, mean ± std over folds) on the clean test clips and under every recording condition."""
    names = [n for n in names if _ece(records[n]) is not None]
    if not names:
        return []
    conditions = list(_runs(records[names[0]])[0].corrupted)
    lines = [
        "ECE with the fitted temperature under every recording condition (mean ± std over folds; the temperature "
        "is fitted on clean validation actors only).",
        "",
        "| condition | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        "| clean | " + " | ".join(f"{_ece(records[n]).mean:.3f} ± {_ece(records[n]).std:.3f}" for n in names) + " |",
    ]
    for condition in conditions:
        cells = [_condition(records[n], condition, "ece") for n in names]
        lines.append(
            f"| {condition} | " + " | ".join(f"{c.mean:.3f} ± {c.std:.3f}" if c else "–" for c in cells) + " |"
        )
    return [*lines, ""]


def _plot_coverage(records: dict, names: list[str], figure: Path) -> bool:
    """Accuracy of the answered clips against the share answered, as the threshold rises (clean test actors)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {n: _coverage(records[n]) for n in names}
    curves = {n: c for n, c in curves.items() if c}
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for n, curve in curves.items():
        ax.plot([100 * c for _, c, _ in curve], [100 * a for _, _, a in curve], marker=".", label=n)
        mark = next(((c, a) for t, c, a in curve if abs(t - DEFAULT_RULE.threshold) < 1e-9), None)
        if mark:
            ax.plot(100 * mark[0], 100 * mark[1], "ko", markersize=4)
    ax.set_xlabel("clips answered (%)")
    ax.set_ylabel("accuracy on answered clips (%)")
    ax.set_title(f"Coverage vs accuracy (dots: threshold {DEFAULT_RULE.threshold})")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    return True
