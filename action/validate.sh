#!/usr/bin/env bash
# validate: every spec against its profiles; errors become annotations on the files' lines.
. "$(dirname "$0")/lib.sh"

format=text
if [ "${GITHUB_ACTIONS:-}" = true ]; then format=github; fi
mlcompile validate "${SPECS[@]}" "${TARGET_ARGS[@]}" --format "$format"
status=$?
case "$status" in
  0 | 2) exit "$status" ;;
  *) internal_error validate "$status" ;;
esac
