#!/usr/bin/env bash
# Creates .venv in the checkout and installs hf-ser into it: the CPU build of torch FIRST (a plain
# "torch" requirement would pull a CUDA build and several GB of CUDA packages), then the package
# with its extras. torchaudio is never installed (with CPU torch it fails to import and breaks
# transformers' pipeline). With --browser, also installs Debian's chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,space,onnx,whisper,ray]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, transformers, hf_ser; assert not torch.version.cuda or torch.cuda.is_available()" \
  || { echo "setup: hf-ser did not install" >&2; exit 1; }
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; the browser test will be skipped" >&2
  else
    echo "setup: chromium missing and apt-get unavailable; the browser test will be skipped" >&2
  fi
fi
