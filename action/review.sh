#!/usr/bin/env bash
# review: validate the specs, diff each against the base revision and keep one comment on the
# pull request, found by its marker: created or updated when something changed, deleted when
# a later push changes nothing, replaced by the errors when the specs or profiles have some.
# Exit status: 0 reviewed (changed or not), 2 errors in the specs or profiles (posted),
# anything else an internal error (the job fails; the comment is left as it was).
. "$(dirname "$0")/lib.sh"

out="${MLCOMPILE_OUT:?}"
rm -rf "$out" && mkdir -p "$out"
base="${MLCOMPILE_BASE:-origin/${MLCOMPILE_PULL_BASE:-main}}"

# MLCOMPILE_COMMENT_PLATFORM: github (the action), gitlab or azure-devops (docs/ci/); each
# reads its own CI variables for the API and the token (src/mlcompile/ci/comment.py).
platform="${MLCOMPILE_COMMENT_PLATFORM:-github}"

# The pull request's comment; on a fork's pull request the token cannot write, so the
# comment is saved in the review artifact for the workflow_run job (docs/ci.md).
comment() {
  if [ -z "${MLCOMPILE_PULL:-}" ] || [ "${MLCOMPILE_COMMENT:-auto}" = never ]; then
    return 0
  fi
  local where=()
  if [ "${MLCOMPILE_COMMENT:-auto}" = auto ] && [ -n "${MLCOMPILE_PULL_HEAD_REPO:-}" ] \
      && [ "$MLCOMPILE_PULL_HEAD_REPO" != "${GITHUB_REPOSITORY:-}" ]; then
    where=(--save-to "$out/comment")
    set_output comment-dir "$out/comment"
  fi
  python3 "$COMMENT_TOOL" "$platform" --pull "$MLCOMPILE_PULL" "${where[@]}" "$@" || exit 2
}

mlcompile validate "${SPECS[@]}" "${TARGET_ARGS[@]}" > "$out/validate.log" 2>&1
status=$?
case "$status" in
  0) cat "$out/validate.log" ;;
  2)
    if [ "${GITHUB_ACTIONS:-}" = true ]; then
      mlcompile validate -q "${SPECS[@]}" "${TARGET_ARGS[@]}" --format github  # annotations on the files
    else
      cat "$out/validate.log"
    fi
    comment --error-log "$out/validate.log" --heading "mlcompile: the specs or profiles have errors"
    exit 2 ;;
  *) cat "$out/validate.log"; internal_error validate "$status" ;;
esac

artifact_flag=""  # diff --artifact FILE: the full diff when the markdown is cut to fit a comment
if has_option diff --artifact; then artifact_flag="--artifact"; fi

# All specs in one `mlcompile diff`: one report, sized as a whole to fit a comment (reports
# appended one per spec could pass GitHub's limit and be cut inside a <details>).
extra=()
if [ -n "$artifact_flag" ]; then extra=("$artifact_flag" "$out/diff-full.txt"); fi
mlcompile diff "${SPECS[@]}" "${TARGET_ARGS[@]}" --base "$base" --format markdown --exit-code "${extra[@]}" \
  > "$out/diff.md" 2> "$out/diff.log"
status=$?
cat "$out/diff.log" >&2
case "$status" in
  0) changed=false; echo "no changes against $base" ;;
  1) changed=true ;;
  2)
    comment --error-log "$out/diff.log" --heading "mlcompile could not diff the specs against $base"
    exit 2 ;;
  *) internal_error diff "$status" ;;
esac

set_output changed "$changed"
if [ "$changed" = true ]; then
  comment --body-file "$out/diff.md"
  # the run's summary page takes at most 1 MiB; the artifact has the whole diff
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then head -c 900000 "$out/diff.md" >> "$GITHUB_STEP_SUMMARY"; fi
else
  comment --delete
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then echo "mlcompile: no changes against $base" >> "$GITHUB_STEP_SUMMARY"; fi
fi
exit 0
