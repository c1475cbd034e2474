"""Publishing: model cards, Hub upload, reports (per-run and RESULTS.md), and the release steps."""
