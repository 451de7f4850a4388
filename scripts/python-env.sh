#!/usr/bin/env bash
# The Python environment of the client-library tests: a venv with tests/python/requirements.txt.
#
#   scripts/python-env.sh [DIR]     (default target/python) -> prints DIR/bin/python
#
# Idempotent: DIR/.stamp records the requirements it was built from; a change rebuilds the venv.
# Needs python3 with venv and pip, and PyPI.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/target/python}"
REQ="$ROOT/tests/python/requirements.txt"
stamp="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$DIR/bin/python" ] && [ "$(cat "$DIR/.stamp" 2>/dev/null || true)" = "$stamp" ]; then
  echo "$DIR/bin/python"
  exit 0
fi
rm -rf "$DIR"
python3 -m venv "$DIR" >&2
"$DIR/bin/pip" install --quiet --disable-pip-version-check -r "$REQ" >&2
echo "$stamp" >"$DIR/.stamp"
echo "$DIR/bin/python"
