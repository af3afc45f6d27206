"""`mlcompile deploy` and `mlcompile plan` as one library call: build the spec for one profile,
compare it with the platform, then apply it — or save the comparison as a plan, or apply a
saved plan once it is shown to still hold (mlcompile.deploy_plan)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from mlcompile import deploy_plan
from mlcompile.build import Compiled, compile_system, select_profiles, write_builds
from mlcompile.diagnostics import Diagnostic, Severity
from mlcompile.errors import UsageError
from mlcompile.runtime.deadline import DEADLINE_ENV, Clock, deadline_seconds, deploy_deadline
from mlcompile.targets.base import Deployable, DeployAction, DeployFailed
from mlcompile.targets.registry import load_target


def run_deploy(
    spec: str | None, target: str | None, *, out_dir: str | None, git_commit: str | None, policy_severity: Severity, dry_run: bool,
    out_plan: str | None, plan_file: str | None, confirm: Callable[[Compiled], Any], on_warnings: Callable[[Sequence[Diagnostic]], Any],
) -> list[DeployAction]:  # fmt: skip
    """What deploy did (or, with `dry_run`, would do), resource by resource. `git_commit`:
    None for "auto". `confirm` is asked before a change that no saved plan covers. Raises
    DeployFailed when the platform refuses, PlanOutOfDate when a saved plan no longer holds."""
    saved = deploy_plan.read_plan(plan_file) if plan_file else None
    if saved is not None:
        if git_commit is not None:
            raise UsageError("--git-commit cannot change a saved plan: it applies the build it was made from, with its commit")
        for given, planned, what in ((spec, saved.spec, "spec"), (target, saved.target, "profile")):
            if given is not None and os.path.realpath(given) != os.path.realpath(planned):
                raise UsageError(f"{plan_file} was made for {what} {planned}, not {given}")
        spec, target, commit = saved.spec, saved.target, saved.git_commit
    else:
        if spec is None:
            raise UsageError("deploy needs SPEC (or --plan FILE)")
        commit = None if git_commit == "none" else (git_commit or "auto")
    profiles = select_profiles(spec, (target,) if target else (), "deploy")
    compilation = compile_system(spec, profiles, render=True, git_commit=commit, policy_severity=policy_severity)
    on_warnings(compilation.warnings)
    (result,) = compilation.results
    backend = load_target(result.profile.target.platform)
    if not isinstance(backend, Deployable):
        raise UsageError(f"target '{backend.name}' cannot deploy; build it and submit the files with the platform's tools")
    if saved is not None:
        deploy_plan.check_build(saved, result.files, str(plan_file))
    elif not dry_run:
        confirm(result)
    with tempfile.TemporaryDirectory(prefix="mlcompile-deploy-") as scratch:
        (folder,) = write_builds([result], out_dir or scratch)
        clock = Clock()
        try:
            with deploy_deadline(deadline_seconds()) as clock:
                if saved is not None:  # the platform must compare as it did when the plan was reviewed
                    deploy_plan.check_live(saved, backend.deploy(result.plan, folder, dry_run=True), str(plan_file))
                actions = backend.deploy(result.plan, folder, dry_run=dry_run)
        except DeployFailed as exc:
            if clock.passed:
                raise DeployFailed(f"gave up after {deadline_seconds():g}s ({DEADLINE_ENV}): {exc}", exc.applied, exc.not_applied) from exc
            raise
        except Exception as exc:  # out of time where a target could not record what it applied
            if not clock.passed:
                raise
            raise DeployFailed(f"gave up after {deadline_seconds():g}s ({DEADLINE_ENV}): {exc}") from exc
    if out_plan:
        made = deploy_plan.make_plan(
            system=result.plan.system, profile=result.profile.name, platform=result.profile.target.platform, spec=spec,
            target=result.profile.document.file, git_commit=result.plan.lineage.git_commit, files=result.files, actions=actions,
        )  # fmt: skip
        deploy_plan.write_plan(made, out_plan)
    return actions


def failure_summary(exc: DeployFailed) -> list[str]:
    """What a failed deploy did and did not do, resource by resource: never half a change in
    silence. `unchanged` resources were already in place; `not applied` ones were not changed."""

    def line(action: DeployAction) -> str:
        return f"  {action.action} {action.resource}" + (f": {action.detail}" if action.detail else "")

    from mlcompile.diagnostics import escape_terminal

    lines = [f"deploy failed: {escape_terminal(str(exc))}"]
    lines += ["applied before the failure:", *map(line, exc.applied)] if exc.applied else ["applied before the failure: nothing"]
    if exc.not_applied is None:  # a target that cannot list its resources
        lines.append("not applied: everything after that")
    else:
        lines += ["not applied:", *(f"  {resource}" for resource in exc.not_applied)] if exc.not_applied else ["not applied: nothing"]
    lines.append("deploy again once the platform accepts it: what was applied reports unchanged, the rest is applied")
    return lines
