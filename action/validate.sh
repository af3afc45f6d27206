#!/usr/bin/env bash
# validate: every spec against its profiles; errors become annotations on the files' lines.
. "$(dirname "$0")/lib.sh"

mlcompile validate "${SPECS[@]}" "${TARGET_ARGS[@]}" --format github
status=$?
case "$status" in
  0 | 2) exit "$status" ;;
  *) internal_error validate "$status" ;;
esac
