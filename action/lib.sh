# Shared by the action's scripts (sourced). The inputs arrive as MLCOMPILE_* variables.
set -uo pipefail

ACTION_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMMENT_TOOL="$ACTION_ROOT/src/mlcompile/ci/comment.py"

# MLCOMPILE_SPECS / MLCOMPILE_TARGETS: paths or globs separated by white space, expanded by
# bash here (a glob that matches nothing stays as it is, and mlcompile reports the missing file).
shopt -s globstar
SPECS=()
for word in ${MLCOMPILE_SPECS:-}; do SPECS+=("$word"); done
TARGETS=()
TARGET_ARGS=()
for word in ${MLCOMPILE_TARGETS:-}; do
  TARGETS+=("$word")
  TARGET_ARGS+=(--target "$word")
done
# An error for the run's page: an annotation on GitHub, a plain line elsewhere.
say_error() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then echo "::error title=mlcompile::$1"; else echo "error: $1"; fi
}

if [ "${#SPECS[@]}" -eq 0 ]; then
  say_error "no spec given (MLCOMPILE_SPECS, the action's input specs)"
  exit 2
fi

# Options that newer mlcompile releases add (diff --artifact, deploy --out-plan/--plan):
# used when the installed mlcompile lists them in its help, so one action works with both.
has_option() {
  local help  # read whole first: grep -q leaving a pipe early would fail it under pipefail
  help="$(mlcompile "$1" --help 2>/dev/null)"
  grep -q -e "$2[ ,=]" <<< "$help"
}

# Exit 0 is success, 1 a verdict (changed / deploy refused), 2 an error in the user's files.
# Anything else (3: a bug in mlcompile) fails the job and is never taken for "no changes".
internal_error() {
  say_error "mlcompile $1 stopped with exit status $2: an internal error, not a verdict on the change (see the log above)"
  exit "$2"
}

set_output() {
  echo "$1=$2" >> "${GITHUB_OUTPUT:-/dev/null}"
}
