#!/usr/bin/env bash
# Set up and run the test suite (lint + pytest). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
ruff check .
ruff format --check .
snakemake --lint --configfile config/demo.yaml
python -m pytest -q "$@"
