"""Metric modules shipped with hf-ser, loadable offline with ``evaluate.load(<path>)``."""

from pathlib import Path

SER_METRICS_PATH = str(Path(__file__).resolve().parent / "ser_metrics")


def load_ser_metrics():
    """``evaluate.load`` of the bundled SER metric module (a local folder: no Hub access)."""
    import evaluate

    return evaluate.load(SER_METRICS_PATH)
