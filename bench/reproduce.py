"""Real-data results: runs the protocols on ../shared/corpora and writes docs/RESULTS.md.

    python bench/reproduce.py                      # every experiment, then the report
    python bench/reproduce.py --only emodb-loso    # some experiments
    python bench/reproduce.py --report-only        # rewrite docs/RESULTS.md from finished runs

Each experiment writes ``<out>/<name>/summary.json`` (per-fold metrics, mean ± std, confusion matrix,
timings); the report reads every summary present, so experiments can run in separate invocations.
Exploration variants (``--explore``) train one speaker-independent RAVDESS holdout split per variant.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import datasets
import torch
import transformers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hf_ser.experiment import load_experiment  # noqa: E402

from hf_ser.training import fit, load_experiment_data, protocol_splits, run_cross_corpus, run_protocol  # noqa: E402

PAPER = {"ravdess": 99.23, "emodb": 99.53}
EXPERIMENTS = {
    # name: (config, overrides, protocol, corpus or (train, test))
    "ravdess-8class-speaker-5fold": ("configs/ravdess.yaml", [], "speaker-kfold", "ravdess"),
    "emodb-loso": ("configs/emodb.yaml", [], "loso", "emodb"),
    "ravdess-7class-speaker-5fold": ("configs/ravdess.yaml", ["data.merge_calm=true"], "speaker-kfold", "ravdess"),
    # The paper trained 100 epochs (configs/paper/*.yaml); the results run stops at PAPER_EPOCHS to fit the time
    # budget of a 2-core machine (about 20 s per RAVDESS epoch), and the report says so.
    "ravdess-paper-protocol": ("configs/paper/ravdess.yaml", ["training.epochs=PAPER_EPOCHS"], "paper", "ravdess"),
    "emodb-paper-protocol": ("configs/paper/emodb.yaml", ["training.epochs=PAPER_EPOCHS"], "paper", "emodb"),
    "ravdess-to-emodb": ("configs/ravdess.yaml", ["data.merge_calm=true"], "cross", ("ravdess", "emodb")),
}
EXPLORE = {
    # name: (overrides on configs/ravdess.yaml, what it tests)
    "per-utterance CMVN": (["features.do_normalize=true"], "per-utterance mean/variance normalisation of MFCCs"),
    "no CMVN (default)": ([], "raw MFCCs, no per-utterance normalisation"),
    "no CMVN + input BN": (["model.input_batch_norm=true"], "learned global standardisation (StandardScaler-like)"),
    "no augmentation": (["augmentation.copies=[]"], "original clips only"),
    "mean pooling": (["model.pooling=mean"], "mean instead of mean+std pooling"),
    "no attention": (
        ["model.use_channel_attention=false", "model.use_spatial_attention=false"],
        "both CBAM attentions off",
    ),
    "n_mfcc 20": (["features.n_mfcc=20"], "20 instead of 40 coefficients"),
}


OBSERVATIONS = """## Observations

- **The paper's protocol was run for 25 of its 100 epochs** (about 20 s per RAVDESS epoch for the 2.3 M-parameter
  flatten network on 2 cores; the full run is `hf-ser evaluate --config configs/paper/ravdess.yaml`). Its
  leaky test accuracy was still rising by about one point per epoch (RAVDESS 39.6 → 75.5, EMO-DB 29.4 → 71.5),
  so the paper's 99 % after 100 epochs at Adam 1e-5 is plausible on this protocol; the gap to the
  speaker-independent rows below is what the leak is worth. Differences from the notebooks: AdamW with no
  weight decay instead of Keras L2 1e-3, no global StandardScaler (raw MFCCs into the first conv).
- **Per-utterance CMVN hurt most.** Normalising each MFCC coefficient per utterance removes the level and
  spectral tilt that carry arousal; turning it off (`features.do_normalize: false`) took one RAVDESS holdout
  split from 49.0 % to 65.3 % accuracy in a first 20-epoch comparison, and is now the default everywhere.
- **Model selection on two validation speakers is a lottery.** The same default config on the same holdout
  split scored 66.0 % in one run (stopped at epoch 23) and 47.7 % in another (best validation epoch 4, stopped
  at 12): CPU training is not bit-reproducible across runs here, and early stopping on 120 utterances from two
  actors amplifies the difference. Fold-to-fold spread (± 7.8 on RAVDESS 8-class, ± 9.1 on EMO-DB LOSO) is of
  the same size. Single-split rows in the table below are indicative only. The bundled `ser-ravdess`
  checkpoint is therefore trained without a validation split, to the end of its cosine schedule.
- **An input batch norm (StandardScaler-like) did not help** on its one run (48.3 %, stopped at epoch 11).
- **Cross-corpus transfer is near chance** (RAVDESS → EMO-DB UAR about 20 % against 16.7 % chance): acted
  English emotions from one studio do not carry to German actors through MFCC statistics alone.
- **Not yet tried** (time budget of this session: every 5-fold RAVDESS run costs 15-20 minutes on 2 cores):
  deltas, SpecAugment-style masking, mixup, learning-rate sweeps, larger validation sets or fold ensembling.
  These are the next steps towards the 65 % / 75 % bars that the current numbers miss.
"""


def run_experiment(name: str, corpora_dir: Path, out: Path, paper_epochs: int = 100) -> dict:
    config, overrides, protocol, corpus = EXPERIMENTS[name]
    overrides = [o.replace("PAPER_EPOCHS", str(paper_epochs)) for o in overrides]
    exp = load_experiment(ROOT / config, overrides)
    started = time.time()
    if protocol == "cross":
        summary = run_cross_corpus(
            exp, corpus[0], corpora_dir / corpus[0], corpus[1], corpora_dir / corpus[1], out / name
        )
    else:
        summary = run_protocol(exp, corpora_dir / corpus, out / name, protocol=protocol)
    summary["total_wall_seconds"] = time.time() - started
    summary["config"] = config
    summary["overrides"] = overrides
    (out / name / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_explore(corpora_dir: Path, out: Path, names: list[str]) -> None:
    path = out / "explore.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for name in names:
        overrides, _ = EXPLORE[name]
        exp = load_experiment(ROOT / "configs" / "ravdess.yaml", overrides)
        dataset = load_experiment_data(exp, corpora_dir / "ravdess")
        [(_, splits)] = protocol_splits(exp, dataset, "holdout")
        started = time.time()
        result = fit(exp, splits, out / "explore" / name.replace(" ", "_"))
        results[name] = {
            **result["test"],
            "best_validation_uar": result["best_validation_uar"],
            "epochs": result["epochs_run"],
            "seconds": time.time() - started,
            "parameters": result["parameters"],
        }
        path.write_text(json.dumps(results, indent=2))
        print(f"explore {name}: {json.dumps(results[name])}", flush=True)


CHECKPOINTS = {
    # bundled name: (config, overrides, corpus, cross-validation experiment whose summary goes into the card)
    "ser-ravdess": ("configs/ravdess.yaml", [], "ravdess", "ravdess-8class-speaker-5fold"),
    "ser-emodb": ("configs/emodb.yaml", [], "emodb", "emodb-loso"),
}


def make_checkpoints(corpora_dir: Path, out: Path) -> None:
    """Train the bundled checkpoints (speaker-independent holdout) and write their cards."""
    import shutil

    from hf_ser.cards import write_card

    for name, (config, overrides, corpus, cv_name) in CHECKPOINTS.items():
        exp = load_experiment(ROOT / config, overrides)
        dataset = load_experiment_data(exp, corpora_dir / corpus)
        [(_, splits)] = protocol_splits(exp, dataset, "holdout")
        folder = ROOT / "checkpoints" / name
        staging = folder.with_name(f".{name}.new")  # the bundled one is replaced only by a finished run
        shutil.rmtree(staging, ignore_errors=True)
        fit(exp, splits, staging)
        (staging / "training_args.bin").unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["protocol"] = "holdout"
        cv_path = out / cv_name / "summary.json"
        if cv_path.is_file():
            cv = json.loads(cv_path.read_text())
            metrics["cross_validation"] = {
                "protocol": cv["protocol"],
                "folds": len(cv["folds"]),
                **{k: cv[k] for k in ("accuracy", "uar", "macro_f1")},
            }
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
        card = write_card(folder, repo_id=f"hf-ser/{name}")
        shutil.copy(card, ROOT / "model_cards" / f"{name}.md")
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(
            f"checkpoint {name}: test accuracy {100 * metrics['test']['accuracy']:.2f}, {size / 1e6:.2f} MB", flush=True
        )


def pct(summary: dict, key: str) -> str:
    return f"{100 * summary[key]['mean']:.2f} ± {100 * summary[key]['std']:.2f}"


def write_report(out: Path, target: Path) -> None:
    summaries = {
        name: json.loads((out / name / "summary.json").read_text())
        for name in EXPERIMENTS
        if (out / name / "summary.json").is_file()
    }
    explore = json.loads((out / "explore.json").read_text()) if (out / "explore.json").is_file() else {}
    any_summary = next(iter(summaries.values()), {})
    hw = any_summary.get("hardware", {})
    lines = [
        "# Results on real data",
        "",
        "Generated by `python bench/reproduce.py` from runs on `../shared/corpora` (RAVDESS speech at 16 kHz; EMO-DB "
        "cut or padded to 2.0 s per file, so EMO-DB figures are not directly comparable with full-length results).",
        f"Hardware: {hw.get('device', 'cpu')} ({hw.get('cpu', platform.machine())}), {hw.get('torch_threads', '?')} "
        f"torch threads, torch {hw.get('torch', torch.__version__)}, transformers {transformers.__version__}. "
        "All numbers are percentages on speakers or rows never used for training, mean ± std over folds.",
        "",
    ]

    def row(name: str, label: str) -> str:
        s = summaries[name]
        return (
            f"| {label} | {len(s['folds'])} | {pct(s, 'accuracy')} | {pct(s, 'uar')} | {pct(s, 'macro_f1')} | "
            f"{s.get('parameters', 0):,} | {s.get('seconds_per_epoch', 0):.1f} | "
            f"{s.get('total_wall_seconds', s.get('wall_seconds', 0)) / 60:.1f} |"
        )

    header = [
        "| experiment | folds | accuracy | UAR | macro-F1 | parameters | s / epoch | wall (min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        "## (a) The paper's protocol, beside the paper's numbers",
        "",
        "Augment every clip first (original, noise, pitch +2, pitch +2 & noise), random 80/20 split over the "
        "augmented rows, test set also used for validation, 100 epochs, Adam 1e-5, the paper's network. Copies "
        "of one utterance and every speaker sit on both sides: these numbers are leaky and speaker-dependent.",
        "",
        *header,
    ]
    paper_epochs = {n: s.get("overrides", []) for n, s in summaries.items() if n.endswith("paper-protocol")}
    for name, corpus in [("ravdess-paper-protocol", "ravdess"), ("emodb-paper-protocol", "emodb")]:
        if name in summaries:
            epochs = next((o.split("=")[1] for o in paper_epochs[name] if o.startswith("training.epochs=")), "100")
            lines.append(row(name, f"{corpus} (paper protocol, {epochs} epochs; paper reports {PAPER[corpus]})"))
    lines += [
        "",
        "## (b) Speaker-independent results (lead with these)",
        "",
        "Split by speaker first, augment the training part only; validation speakers (10 % of the training "
        "speakers) drive early stopping; each fold's test speakers are never heard in training.",
        "",
        *header,
    ]
    for name, label in [
        ("ravdess-8class-speaker-5fold", "RAVDESS 8 classes, 5-fold by actor"),
        ("ravdess-7class-speaker-5fold", "RAVDESS 7 classes (calm → neutral), 5-fold by actor"),
        ("emodb-loso", "EMO-DB 7 classes, leave one speaker out"),
    ]:
        if name in summaries:
            lines.append(row(name, label))
    if "ravdess-to-emodb" in summaries:
        s = summaries["ravdess-to-emodb"]
        lines += [
            "",
            "## (c) Cross-corpus: RAVDESS → EMO-DB",
            "",
            f"Trained on RAVDESS (English), tested on all of EMO-DB (German) on the labels both share: "
            f"{', '.join(s['labels'])}. Chance UAR is {100 / len(s['labels']):.1f}.",
            "",
            *header,
            row("ravdess-to-emodb", "RAVDESS → EMO-DB"),
        ]
    lines += [
        "",
        "Per-fold numbers, confusion matrices and each fold's model are in the run folders "
        "(`runs/reproduce/<experiment>/`, not committed).",
        "",
    ]
    targets = []
    if "ravdess-8class-speaker-5fold" in summaries:
        acc = 100 * summaries["ravdess-8class-speaker-5fold"]["accuracy"]["mean"]
        targets.append(
            f"RAVDESS 8-class accuracy {acc:.2f} (first bar ≥ 65: {'met' if acc >= 65 else 'missed'}; "
            f"goal ≥ 80: {'met' if acc >= 80 else 'not yet'})"
        )
    if "emodb-loso" in summaries:
        uar = 100 * summaries["emodb-loso"]["uar"]["mean"]
        targets.append(
            f"EMO-DB LOSO UAR {uar:.2f} (first bar ≥ 75: {'met' if uar >= 75 else 'missed'}; "
            f"goal ≥ 85: {'met' if uar >= 85 else 'not yet'})"
        )
    if targets:
        lines += ["**Targets**: " + "; ".join(targets) + ".", ""]
    if explore:
        lines += [
            "## (d) What helped and what did not",
            "",
            "One speaker-independent RAVDESS holdout split (17 training, 2 validation, 5 test actors), 8 classes, "
            "changing one thing at a time from the default config. Single runs on one split are noisy (see the "
            "observations below: the same config gave 66.0 and 47.7): read them as hints, not results.",
            "",
            "| variant | what changes | test accuracy | test UAR | epochs | seconds |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in explore.items():
            what = EXPLORE.get(name, ([], ""))[1]
            lines.append(
                f"| {name} | {what} | {100 * r['accuracy']:.2f} | {100 * r['uar']:.2f} | {r['epochs']:.0f} | "
                f"{r['seconds']:.0f} |"
            )
        lines.append("")
    lines += [OBSERVATIONS, "## Speed", ""]
    for name, s in summaries.items():
        lines.append(
            f"- `{name}`: {s.get('seconds_per_epoch', 0):.1f} s per epoch (mean over folds), whole protocol "
            f"{s.get('total_wall_seconds', s.get('wall_seconds', 0)) / 60:.1f} min."
        )
    lines.append("")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines))
    compact = {
        name: {k: s[k] for k in ("accuracy", "uar", "macro_f1", "weighted_f1")}
        | {
            "folds": s["folds"],
            "seconds_per_epoch": s.get("seconds_per_epoch"),
            "total_wall_seconds": s.get("total_wall_seconds"),
        }
        for name, s in summaries.items()
    }
    (target.parent / "results.json").write_text(json.dumps({"experiments": compact, "explore": explore}, indent=2))
    print(f"wrote {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "reproduce")
    parser.add_argument("--only", default=None, help="comma-separated experiment names")
    parser.add_argument("--explore", default=None, help="comma-separated exploration variants, or 'all'")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--paper-epochs", type=int, default=100, help="epochs of the paper-protocol runs")
    parser.add_argument("--checkpoints", action="store_true", help="(re)train the bundled checkpoints")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        if not args.corpora_dir.is_dir():
            sys.exit(f"no corpora at {args.corpora_dir}")
        if args.explore:
            names = list(EXPLORE) if args.explore == "all" else args.explore.split(",")
            run_explore(args.corpora_dir, args.out, names)
        names = args.only.split(",") if args.only else ([] if args.explore or args.checkpoints else list(EXPERIMENTS))
        for name in names:
            summary = run_experiment(name, args.corpora_dir, args.out, args.paper_epochs)
            print(f"{name}: accuracy {pct(summary, 'accuracy')}, UAR {pct(summary, 'uar')}", flush=True)
        if args.checkpoints:
            make_checkpoints(args.corpora_dir, args.out)
    write_report(args.out, args.report)


if __name__ == "__main__":
    main()
