#!/usr/bin/env bash
# Creates .feast-venv (Feast in its own virtualenv) once, from tests/feast_peer/requirements.txt.
# Re-installs only when that file is newer than the stamp. Prints nothing on a no-op.
# Exit status: 0 when .feast-venv/bin/feast works, non-zero otherwise (no network, ...).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV=".feast-venv"
REQS="tests/feast_peer/requirements.txt"
STAMP="$VENV/.installed"

if [ -f "$STAMP" ] && [ ! "$REQS" -nt "$STAMP" ] && [ -x "$VENV/bin/feast" ]; then
  exit 0
fi
start=$(date +%s)
echo "feast venv: installing $(grep -v '^#' "$REQS" | xargs) into $VENV"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
"$VENV/bin/python" -c "import feast, sys; assert feast.__version__ == '0.67.0', feast.__version__"
touch "$STAMP"
echo "feast venv: ready in $(( $(date +%s) - start )) s, $(du -sh "$VENV" | cut -f1)"
