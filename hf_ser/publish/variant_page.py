"""Training variants against the rows they change, from the ``validation_conditions`` and ``test_conditions`` of
result files: where a variant is chosen (validation actors, mean over the corrupted conditions), every variant of a
family side by side, and whether choosing on validation actors picks what the test actors would."""

from __future__ import annotations

import numpy as np
from scipy import stats


def variant_lines(records: dict, names: list[str]) -> list[str]:
    """The pairwise tables, the family tables and the check of the choice, for the experiments ``names``."""
    return [
        *_validation_lines(records, names),
        *_family_lines(records, names),
        *_reading_lines(records, names),
        *_choice_check_lines(records, names),
    ]


def runs_by_seed_fold(record, field: str) -> dict[tuple[str, str], object]:
    """``(seed, fold) -> value`` of a per-fold field of every seed's summary (``folds``, ``validation_conditions``,
    ``test_conditions``): how two records' runs are paired."""
    return {(seed, fold): v for seed, r in record.seeds.items() for fold, v in getattr(r, field).items()}


def _variant_pairs(records: dict, names: list[str]) -> list[tuple[str, str]]:
    """``(variant, base)`` for each experiment of ``names`` whose ``compare_with`` row is among them too."""
    return [(n, records[n].spec.compare_with) for n in names if records[n].spec.compare_with in names]


def _runs_named(keys: list[tuple[str, str]]) -> str:
    seeds, folds = sorted({s for s, _ in keys}), sorted({f for _, f in keys})
    return f"{', '.join(folds)}, {'seeds' if len(seeds) > 1 else 'seed'} {', '.join(seeds)}"


def _validation_lines(records: dict, names: list[str]) -> list[str]:
    """Validation UAR per condition of each variant beside the row it changes (``compare_with``), averaged over the
    (seed, fold) runs both have: where training variants are chosen (on the mean over conditions), never on test
    actors. Beside it, for the report only, the test actors' UAR lost and agreement on those same runs (a screen's
    folds, not the base's five)."""
    lines = []
    for name, base in _variant_pairs(records, names):
        validation = {n: runs_by_seed_fold(records[n], "validation_conditions") for n in (name, base)}
        shared = sorted(set(validation[name]) & set(validation[base]))
        if not shared:
            continue
        tests = {n: runs_by_seed_fold(records[n], "test_conditions") for n in (name, base)}
        clean = {n: runs_by_seed_fold(records[n], "folds") for n in (name, base)}
        tested = all(k in tests[n] for n in (name, base) for k in shared)
        lines += [
            f"Validation UAR (%) under each condition, {name} against {base}, on the validation actors of "
            f"{_runs_named(shared)} (the runs both have): where a training variant is chosen, on the mean over "
            "conditions."
            + (
                " Then, on the test actors of the same runs: UAR points lost against the clean clips, and top-label "
                "agreement with them (%)."
                if tested
                else ""
            ),
            "",
            f"| condition | {base} | {name} | change |"
            + (" test lost, base | variant | agree, base | variant |" if tested else ""),
            "|---|---|---|---|" + ("---|---|---|---|" if tested else ""),
        ]
        rows = []
        for condition in validation[name][shared[0]]:
            row = [100 * np.mean([validation[n][k][condition].uar for k in shared]) for n in (base, name)]
            if tested:
                row += [
                    100 * np.mean([clean[n][k].uar - tests[n][k][condition].uar for k in shared]) for n in (base, name)
                ]
                row += [100 * np.mean([tests[n][k][condition].agreement for k in shared]) for n in (base, name)]
            rows.append(row)
            lines.append(_validation_row(condition, row))
        lines += [_validation_row("**mean over conditions**", list(np.mean(rows, axis=0))), ""]
    return lines


def _validation_row(label: str, row: list[float]) -> str:
    a, b, *test = row
    cells = f"| {label} | {a:.2f} | {b:.2f} | {b - a:+.1f} |"
    if test:
        cells += f" {test[0]:.1f} | {test[1]:.1f} | {test[2]:.1f} | {test[3]:.1f} |"
    return cells


def _family_lines(records: dict, names: list[str]) -> list[str]:
    """Every variant of one recipe file (``config``: a model family) side by side on the validation actors of the
    (seed, fold) runs all of them have: a pairwise table compares a variant with its base only, this one with the
    others too (such as the recipe a default ships)."""
    families: dict[str, list[str]] = {}
    for n in names:
        if any(r.validation_conditions for r in records[n].seeds.values()):
            families.setdefault(records[n].spec.config, []).append(n)
    lines = []
    for config, members in families.items():
        validation = {n: runs_by_seed_fold(records[n], "validation_conditions") for n in members}
        shared = sorted(set.intersection(*(set(v) for v in validation.values())))
        if len(members) < 2 or not shared:
            continue
        conditions = list(validation[members[0]][shared[0]])
        lines += [
            f"Every variant of `{config}` on the validation actors of {_runs_named(shared)} (the runs all of them "
            f"have): validation UAR (%) averaged over the {len(conditions)} conditions, and its lowest condition.",
            "",
            "| experiment | mean over conditions | lowest condition |",
            "|---|---|---|",
        ]
        for n in members:
            uar = {c: 100 * np.mean([validation[n][k][c].uar for k in shared]) for c in conditions}
            low = min(uar, key=uar.get)
            lines.append(f"| {n} | {np.mean(list(uar.values())):.2f} | {uar[low]:.2f} ({low}) |")
        lines.append("")
    return lines


def _mean_change(scores: dict, name: str, base: str, run: tuple[str, str]) -> float:
    """UAR points of ``name`` over ``base`` on one (seed, fold) run, averaged over the conditions both scored."""
    ours, theirs = scores[name][run], scores[base][run]
    return 100 * float(np.mean([ours[c].uar - theirs[c].uar for c in ours if c in theirs]))


def reading(changes: list[float], level: float = 0.05) -> str:
    """``"leads"``, ``"behind"`` or ``"a tie"``: whether a variant's per-run changes over the row it changes (UAR
    points on the validation actors, one per (seed, fold) run) put their mean beyond what the runs' own spread allows
    at ``level``, two-sided (a paired t-test: the mean's distance from 0 in standard errors against Student's t with
    n - 1 degrees of freedom). Folds differ by several points, so a lead of a point or two over 5 runs is a tie."""
    if len(changes) < 2:
        return "one run: no reading"
    mean, se = float(np.mean(changes)), float(np.std(changes, ddof=1) / np.sqrt(len(changes)))
    beyond = stats.t.ppf(1 - level / 2, len(changes) - 1) * se
    return "leads" if mean > beyond else "behind" if mean < -beyond else "a tie"


def runs_to_read(changes: list[float], level: float = 0.05, most: int = 100) -> str:
    """For a tie, how many runs it would take for its mean change to read as a lead (or as behind) if the mean and
    spread stayed as measured: ``"about 33"``, ``"over 100"``; ``"–"`` where there is a reading already or no
    spread. A guide to whether more seeds are worth their time, not a forecast: a second seed has taken leads of
    this size away before."""
    if len(changes) < 2 or reading(changes, level) != "a tie" or not np.std(changes, ddof=1):
        return "–"
    mean, sd = abs(float(np.mean(changes))), float(np.std(changes, ddof=1))
    for n in range(len(changes) + 1, most + 1):
        if mean > stats.t.ppf(1 - level / 2, n - 1) * sd / np.sqrt(n):
            return f"about {n}"
    return f"over {most}"


def _reading_lines(records: dict, names: list[str]) -> list[str]:
    """Each variant's change over the row it changes on the validation actors (where it is chosen), run by run:
    its mean, spread and standard error over the (seed, fold) runs both have, on how many it is ahead, and the
    reading of the rule that chooses (``reading``): a variant replaces the row it changes only where it leads."""
    rows = []
    for name, base in _variant_pairs(records, names):
        val = {n: runs_by_seed_fold(records[n], "validation_conditions") for n in (name, base)}
        shared = sorted(set(val[name]) & set(val[base]))
        changes = [_mean_change(val, name, base, k) for k in shared]
        if not changes:
            continue
        spread, se = "", "–"  # one run has no spread
        if len(changes) > 1:
            sd = float(np.std(changes, ddof=1))
            spread, se = f" ± {sd:.1f}", f"{sd / np.sqrt(len(changes)):.1f}"
        rows.append(
            f"| {name} | {base} | {len(changes)} | {np.mean(changes):+.1f}{spread} | {se} | "
            f"{sum(c > 0 for c in changes)} of {len(changes)} | {reading(changes)} | {runs_to_read(changes)} |"
        )
    if not rows:
        return []
    return [
        "Where a variant is chosen: its change over the row it changes on the validation actors, UAR points averaged "
        "over the conditions, one value per (seed, fold) run both have; mean ± standard deviation over those runs, "
        "the standard error of the mean, the runs it is ahead on, and the reading: it *leads* (and may replace the "
        "row it changes) only where the mean is beyond what the runs' spread allows (a paired t-test, two-sided, "
        "5 %); otherwise it is *a tie* or *behind*, and the row it changes stays. For a tie, the runs it would take "
        "to read either way if its mean and spread held (a guide to whether more seeds are worth their time, not a "
        "forecast).",
        "",
        "| variant | against | runs | change | standard error | ahead on | reading | runs for a reading |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _choice_check_lines(records: dict, names: list[str]) -> list[str]:
    """For the report only (nothing is chosen on test actors): for each variant, its change over the row it changes
    on the validation actors (where it is chosen) beside the same change on the test actors of the same runs. If the
    two move together run by run, a fold's change is the trained model's own and validation picks what the test
    actors would; if they do not, the 2 validation actors are too few to choose on."""
    rows, points, by_family = [], [], {}
    for name, base in _variant_pairs(records, names):
        val = {n: runs_by_seed_fold(records[n], "validation_conditions") for n in (name, base)}
        test = {n: runs_by_seed_fold(records[n], "test_conditions") for n in (name, base)}
        shared = sorted(set(val[name]) & set(val[base]) & set(test[name]) & set(test[base]))
        pairs = [(_mean_change(val, name, base, k), _mean_change(test, name, base, k)) for k in shared]
        if not pairs:
            continue
        points += pairs
        by_family.setdefault(records[name].spec.config, []).extend(pairs)
        dv, dt = np.mean(pairs, axis=0)
        rows.append(f"| {name} | {base} | {len(pairs)} | {dv:+.1f} | {dt:+.1f} | {_same_sign(pairs)} of {len(pairs)} |")
    if len(points) < 3:
        return []
    return [
        "Does choosing on the validation actors pick what the test actors would? For the report only: each "
        "variant's change over the row it changes, UAR points averaged over the conditions, on the validation "
        "actors and on the test actors of the same (seed, fold) runs, and the runs where both changes have the same "
        f"sign. Over all runs the two changes correlate at {_agreement(points)}"
        + "".join(f"; `{config}` alone at {_agreement(p)}" for config, p in by_family.items() if len(p) >= 3)
        + ". Where they move together, a fold's swing is the trained model's own (its validation and test actors "
        "gain or lose together), and more folds and seeds, not more validation actors, are what narrow a comparison.",
        "",
        "| variant | against | runs | change, validation | change, test | same sign |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _agreement(pairs: list[tuple[float, float]]) -> str:
    """``"r = 0.85, the same sign in 42 of 52 runs"``: how a variant's validation change and test change go together."""
    v, t = np.array(pairs).T
    return f"r = {np.corrcoef(v, t)[0, 1]:.2f}, the same sign in {_same_sign(pairs)} of {len(pairs)} runs"


def _same_sign(pairs: list[tuple[float, float]]) -> int:
    """In how many (validation change, test change) pairs both changes have the same sign."""
    return int(sum(np.sign(v) == np.sign(t) for v, t in pairs))
