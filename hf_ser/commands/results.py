"""`hf-ser results`: run registered experiments, regenerate docs/RESULTS.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import RESULTS_DIR, fold_indices, release_args


def register(sub) -> None:
    results = sub.add_parser("results", help="run registered experiments and/or regenerate docs/RESULTS.md")
    results.add_argument("action", choices=["run", "collect", "merge", "rescore", "report"])
    release_args(results)
    results.add_argument("--out", default="runs/results", help="run folders (models, per-fold reports)")
    results.add_argument(
        "--report", default=None, help="docs/RESULTS.md; with another --results, RESULTS.md in that folder"
    )
    results.add_argument(
        "--readme",
        default=None,
        help="its generated results block is updated too (README.md; none with another --results)",
    )
    results.add_argument(
        "--seeds", default=None, help="comma-separated training seeds (run: default 0; collect: default every seed)"
    )
    results.add_argument(
        "--from",
        dest="merge_from",
        default=None,
        help="merge: the --results folder whose seeds are added to --results (the same experiment and folds)",
    )
    results.add_argument("--only-folds", type=fold_indices, default=None, help="screen on these fold indices only")
    results.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import bundled_dir
    from ..publish.release import ReleasePlan, collect_partial, merge_records, rescore_record, run_experiment
    from ..publish.results_page import update_readme, write_report

    plan = Path(args.experiments)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    registered = ReleasePlan.load(plan)
    only = args.only.split(",") if args.only else None
    for name in only or []:
        registered.experiment(name)  # an unregistered name is refused before anything runs
    if args.action == "collect":  # an interrupted run: summarise the folds it finished
        if not args.only:
            raise ValueError("results collect needs --only NAME[,NAME…]")
        for name in only:
            record = collect_partial(plan, name, Path(args.out), Path(args.results), seeds)
            scope = "a screen" if record.only_folds is not None else "every fold"
            accuracy = record.metric("accuracy").percent()
            print(f"{name}: {record.fold_runs} fold runs collected ({scope}), accuracy {accuracy}")
    if args.action == "merge":  # seeds run into another --results folder join this one's record
        if not args.only or not args.merge_from:
            raise ValueError("results merge needs --only NAME[,NAME…] and --from FOLDER (the other --results folder)")
        for name in only:
            record = merge_records(plan, name, Path(args.results), Path(args.merge_from))
            print(f"{name}: seeds {', '.join(record.seeds)} ({record.fold_runs} fold runs) in {args.results}")
    if args.action == "rescore":  # runs made before per-clip scores were kept: score their test clips again
        if not args.only:
            raise ValueError("results rescore needs --only NAME[,NAME…] (the experiments whose runs to re-score)")
        for name in only:
            record = rescore_record(plan, name, Path(args.corpora_dir), Path(args.out), Path(args.results))
            pooled = [p for r in record.seeds.values() if (p := r.pooled_calibration())]
            print(f"{name}: " + ", ".join(f"ECE {p.ece:.3f} pooled over {p.clips} clips" for p in pooled))
    if args.action == "run":
        for name in only or list(registered.experiments):
            record = run_experiment(
                plan, name, Path(args.corpora_dir), Path(args.out), Path(args.results), seeds or [0], args.only_folds
            )
            print(f"{name}: accuracy {record.metric('accuracy').percent()}, UAR {record.metric('uar').percent()}")
    report, readme = _outputs(args)
    print(f"wrote {write_report(plan, Path(args.results), report)}")
    if readme is not None:
        update_readme(readme, plan, Path(args.results), bundled_dir())
    return 0


def _outputs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """Where the report and README block go. Results kept elsewhere (a screen's ``--results /tmp/x``) hold only
    some experiments: their report stays beside them, so docs/RESULTS.md and the README never lose the rest."""
    results = Path(args.results)
    project = results == Path(RESULTS_DIR)
    report = Path(args.report) if args.report else (results.parent if project else results) / "RESULTS.md"
    readme = Path(args.readme) if args.readme else (Path("README.md") if project else None)
    return report, readme
