#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv). Idempotent: it reinstalls only
# when requirements/dev.txt or pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "graphwalk: creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
want=$(cat requirements/dev.txt pyproject.toml | sha256sum | cut -c1-16)
stamp="$VENV/.graphwalk-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "graphwalk: installing pinned dependencies into $VENV (torch takes about a minute)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch/torchvision are pinned in requirements/dev.txt to the releases that import together here.
"$VENV/bin/python" -m pip install --quiet -r requirements/dev.txt
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
echo "$want" > "$stamp"
