#!/usr/bin/env bash
# Assemble the Hugging Face Space repository: space/ files and the hf_ser package (its checkpoints included).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/build_space.sh OUTPUT_DIR}
mkdir -p "$out"
cp space/app.py space/requirements.txt space/README.md "$out"/
rsync -a --exclude __pycache__ hf_ser "$out"/ 2>/dev/null || cp -r hf_ser "$out"/
echo "Space assembled in $out"
