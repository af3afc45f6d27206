#!/usr/bin/env bash
# deploy: validate, then for each spec and profile show the plan (deploy --dry-run) and
# apply it. Any failure stops the job with mlcompile's exit status.
. "$(dirname "$0")/lib.sh"

out="${MLCOMPILE_OUT:?}"
mkdir -p "$out"
if [ "${#TARGETS[@]}" -eq 0 ]; then
  say_error "deploy needs the profiles to deploy (MLCOMPILE_TARGETS, the action's input targets)"
  exit 2
fi
profiles=()
for target in "${TARGETS[@]}"; do
  if [ -d "$target" ]; then profiles+=("$target"/*.yaml "$target"/*.yml); else profiles+=("$target"); fi
done

bash "$(dirname "$0")/validate.sh" || exit

saved_plans=false  # deploy --out-plan FILE / --plan FILE: apply exactly the plan shown
if has_option deploy --out-plan && has_option deploy --plan; then saved_plans=true; fi

index=0
for spec in "${SPECS[@]}"; do
  index=$((index + 1))
  for profile in "${profiles[@]}"; do
    [ -e "$profile" ] || continue  # an unmatched *.yml of a profile folder
    plan="$out/$index-$(basename "${profile%.*}").plan.json"
    echo "::group::plan: $spec on $profile"
    if [ "$saved_plans" = true ]; then
      mlcompile deploy "$spec" --target "$profile" --dry-run --out-plan "$plan"
    else
      mlcompile deploy "$spec" --target "$profile" --dry-run
    fi
    status=$?
    echo "::endgroup::"
    case "$status" in 0) ;; 1 | 2) exit "$status" ;; *) internal_error "deploy --dry-run" "$status" ;; esac
    if [ "${MLCOMPILE_DRY_RUN:-false}" = true ]; then continue; fi
    if [ "$saved_plans" = true ]; then
      mlcompile deploy "$spec" --target "$profile" --yes --plan "$plan"
    else
      mlcompile deploy "$spec" --target "$profile" --yes
    fi
    status=$?
    case "$status" in 0) ;; 1 | 2) exit "$status" ;; *) internal_error deploy "$status" ;; esac
  done
done
