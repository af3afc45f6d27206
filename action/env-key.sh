#!/usr/bin/env bash
# The cache key of mlcompile's environment: the runner's OS, Python, the extras and the
# dependencies declared in pyproject.toml (mlcompile itself is reinstalled on every run).
set -euo pipefail
pyproject="$(dirname "$0")/../pyproject.toml"
digest="$(sha256sum "$pyproject" | cut -c1-16)"
extras="${MLCOMPILE_EXTRAS:-none}"
venv="${RUNNER_TEMP:?}/mlcompile-venv"
{
  echo "venv=$venv"
  echo "key=mlcompile-venv-${RUNNER_OS:-Linux}-py${MLCOMPILE_PYTHON:?}-${extras//[^a-z,]/}-$digest"
} >> "${GITHUB_OUTPUT:?}"
