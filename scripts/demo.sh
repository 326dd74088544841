#!/usr/bin/env bash
# The main job: set up, generate the embedded demo dataset, run the whole DAG, print the metrics table.
# Extra arguments go to snakemake (e.g. --cores 8, or a target such as `aligned`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
[ -f data/demo/label.csv ] || aemt demo-data data/demo
snakemake --cores "${AEMT_CORES:-2}" "$@" --configfile config/demo.yaml
if [ -f results/demo/summary.md ]; then
  echo
  cat results/demo/summary.md
fi
