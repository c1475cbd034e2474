"""Training loop speed: seconds per epoch and per fold, the v0.1 recipe against the fast screening recipe.

    python bench/bench_training.py [--epochs 3]

Both train fold 0 of RAVDESS 5-fold by actor from ../shared/corpora for ``--epochs`` epochs in this run
(features cached on disk first, so only training is timed): the v0.1 recipe (two augmented copies per clip,
full-length items, evaluation on validation actors every epoch) and the fast recipe of
``configs/experiments.yaml`` (``x-fast``: no copies, 2.5 s random crops, no validation). Prints a table and a
BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import print_json_line, print_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    import yaml

    from hf_ser.publish.release import _flatten
    from hf_ser.training.config import load_experiment
    from hf_ser.training.run import train

    fast = _flatten(yaml.safe_load((ROOT / "configs" / "experiments.yaml").read_text())["x-fast"])
    recipes = {"v0.1 recipe": [], "fast recipe (x-fast)": fast}
    rows, payload = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in recipes.items():
            epochs = [f"training.num_train_epochs={args.epochs}", "training.early_stopping_patience=null"]
            exp = load_experiment(ROOT / "configs" / "v0.1" / "ravdess.yaml", [*overrides, *epochs])
            corpora = {"ravdess": ROOT.parent / "shared" / "corpora" / "ravdess"}
            train(exp, corpora, Path(tmp) / "warm", only_folds=[0])  # fills the feature cache
            result = train(exp, corpora, Path(tmp) / name, only_folds=[0]).summary
            payload[name] = {"seconds_per_epoch": result.seconds_per_epoch, "fold_seconds": result.wall_seconds}
            rows.append([name, f"{result.seconds_per_epoch:.2f}", f"{result.wall_seconds:.0f}"])
    ratio = payload["v0.1 recipe"]["seconds_per_epoch"] / payload["fast recipe (x-fast)"]["seconds_per_epoch"]
    print_table(f"RAVDESS fold 0, {args.epochs} epochs", ["recipe", "s / epoch", "fold wall (s)"], rows)
    print(f"fast recipe: {ratio:.1f}x less time per epoch")
    print_json_line("training", {**payload, "epochs": args.epochs, "speedup_per_epoch": ratio})


if __name__ == "__main__":
    main()
