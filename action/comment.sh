#!/usr/bin/env bash
# comment (workflow_run): post what the review of a fork's pull request saved. The saved
# files come from a run of the fork's code: comment.py reads them as data, checks the pull
# request number and that the pull request's head is the commit that run reviewed.
set -uo pipefail
saved="${MLCOMPILE_COMMENT_DIR:?}/comment"
if [ ! -d "$saved" ]; then
  echo "the review saved no comment to post (a pull request from this repository comments itself)"
  exit 0
fi
python3 "$(dirname "$0")/../src/mlcompile/ci/comment.py" github --from-dir "$saved" --expect-head-sha "${MLCOMPILE_HEAD_SHA:?}"
