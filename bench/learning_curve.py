"""Does fine-tuning pay? Fine-tune vs. from scratch on a corpus the starting model never heard.

    python bench/learning_curve.py --init runs/results/general-lococ-emodb/seed_0 [--seeds 0,1]

EMO-DB written out as an audiofolder (``<label>/*.wav`` + ``metadata.csv`` with ``speaker``), then
``hf_ser.finetune.finetune`` with 5, 10, 20, 50 and all training clips per class, from the starting model (a
RAVDESS + TESS model: it never heard EMO-DB) and from scratch with the same recipe; split by speaker, so
the test speakers are never heard. Writes ``docs/results/learning-curve.json`` (RESULTS.md renders it).
The audiofolder is written under bench/out (never committed).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = [5, 10, 20, 50, None]


def write_audiofolder(corpora_dir: Path, target: Path) -> Path:
    from hf_ser.data.corpora import load_corpus

    if (target / "metadata.csv").is_file():
        return target
    ds = load_corpus("emodb", corpora_dir / "emodb")
    names = ds.features["emotion"].names
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "speaker"])
        for row in ds:
            label = names[row["emotion"]]
            (target / label).mkdir(exist_ok=True)
            shutil.copy(row["audio"], target / label / Path(row["audio"]).name)
            writer.writerow([f"{label}/{Path(row['audio']).name}", row["speaker"]])
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True, help="starting model folder (never trained on EMO-DB)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "learning-curve")
    args = parser.parse_args()
    from hf_ser.finetune import finetune

    folder = write_audiofolder(args.corpora_dir, ROOT / "bench" / "out" / "emodb-audiofolder")
    started = time.time()
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for size in SIZES:
            for mode in ("finetune", "scratch"):
                init = args.init if mode == "finetune" else "scratch"
                run_dir = args.out / f"{mode}-{size or 'all'}-seed{seed}"
                result, _ = finetune(folder, run_dir, init, per_class=size, seed=seed)
                results.append(
                    {
                        "mode": mode,
                        "per_class": size,
                        "seed": seed,
                        "train_clips": result.rows["train"],
                        "test_clips": result.rows["test"],
                        "test_speakers": result.speakers["test"],
                        "accuracy": result.test.accuracy,
                        "uar": result.test.uar,
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    record = {
        "experiment": "learning-curve",
        "corpus": "emodb (as an audiofolder)",
        "init": str(args.init),
        "recipe": "hf_ser/finetune.yaml",
        "runs": results,
        "wall_seconds": time.time() - started,
    }
    (ROOT / "docs" / "results" / "learning-curve.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
