#!/usr/bin/env bash
# Install mlcompile from this action's own checkout (the ref in `uses: …/mlcompile@<ref>`)
# into a virtual environment restored from the cache when its key matches, and put it on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MLCOMPILE_VENV:?}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
extras="${MLCOMPILE_EXTRAS:-}"
# shellcheck disable=SC2086  # MLCOMPILE_PIP_ARGS: extra pip options, word-split on purpose
"$venv/bin/python" -m pip install --disable-pip-version-check ${MLCOMPILE_PIP_ARGS:-} "$root${extras:+[$extras]}"
echo "$venv/bin" >> "${GITHUB_PATH:?}"
"$venv/bin/mlcompile" --version
