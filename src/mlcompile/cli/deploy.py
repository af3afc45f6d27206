"""`mlcompile deploy` and `mlcompile plan` (the same as `deploy --dry-run`)."""

from __future__ import annotations

import sys
from typing import Any

import click

from mlcompile.cli.common import (
    EXIT_DIFF,
    EXIT_OK,
    State,
    guarded,
    policy_severity,
    profile_option,
    report_diagnostics,
    verbosity_options,
    warn_only_option,
    with_options,
)

deploy_target_option = profile_option("Profile to deploy (default: the one profile in targets/ beside the spec; with --plan: the plan's).", file_only=False)
deploy_options = [
    click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), help="Keep the build here (default: a temporary folder)."),
    click.option("--git-commit", default=None, metavar="auto|none|SHA", help="Commit recorded as lineage (default auto; with --plan, the plan's)."),
    warn_only_option,
]


@click.command()
@verbosity_options
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@deploy_target_option
@with_options(deploy_options)
@click.option("--dry-run", is_flag=True, help="Compare with what is on the platform and print the plan; change nothing.")
@click.option("--out-plan", type=click.Path(dir_okay=False), metavar="FILE", help="With --dry-run: also write the plan to FILE (JSON), for --plan.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Apply exactly this reviewed plan; refused (exit 2) if the build or the platform changed since it was made.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (a --plan was reviewed: it never asks).")
@click.pass_obj
@guarded
def deploy(
    state: State,
    spec: str | None,
    target: str | None,
    out_dir: str | None,
    git_commit: str | None,
    warn_only: bool,
    dry_run: bool,
    out_plan: str | None,
    plan_file: str | None,
    yes: bool,
) -> int:
    """Build SPEC for PROFILE, compare it with what is on the platform, and create or update
    what differs through the platform's SDK. `--dry-run --out-plan FILE` saves the comparison;
    `deploy --plan FILE` applies exactly that, or refuses."""
    from mlcompile.errors import UsageError

    if plan_file and (dry_run or out_plan):
        raise UsageError("--plan applies a saved plan; --dry-run and --out-plan make one: give one or the other")
    if out_plan and not dry_run:
        raise UsageError("--out-plan saves the plan of a --dry-run: add --dry-run (or use `mlcompile plan`)")
    return _deploy(state, spec, target, out_dir, git_commit, warn_only, dry_run=dry_run, out_plan=out_plan, plan_file=plan_file, yes=yes)


@click.command("plan")
@verbosity_options
@click.argument("spec", type=click.Path(dir_okay=False))
@deploy_target_option
@with_options(deploy_options)
@click.option("--out-plan", type=click.Path(dir_okay=False), metavar="FILE", help="Also write the plan to FILE (JSON), for `deploy --plan`.")
@click.pass_obj
@guarded
def plan_command(state: State, spec: str, target: str | None, out_dir: str | None, git_commit: str | None, warn_only: bool, out_plan: str | None) -> int:
    """The same as `deploy --dry-run`: compare SPEC's build for PROFILE with what is on the
    platform and print, per resource, create / update / delete / unchanged."""
    return _deploy(state, spec, target, out_dir, git_commit, warn_only, dry_run=True, out_plan=out_plan, plan_file=None, yes=False)


def _deploy(
    state: State,
    spec: str | None,
    target: str | None,
    out_dir: str | None,
    git_commit: str | None,
    warn_only: bool,
    *,
    dry_run: bool,
    out_plan: str | None,
    plan_file: str | None,
    yes: bool,
) -> int:
    from mlcompile.deploying import failure_summary, run_deploy
    from mlcompile.errors import UsageError
    from mlcompile.targets.base import DeployFailed

    def confirm(result: Any) -> None:
        if yes:
            return
        if not sys.stdin.isatty():
            raise UsageError("deploy changes a live platform: pass --yes (or --dry-run) when not running interactively")
        click.confirm(f"deploy {result.plan.system} to {result.profile.name} ({result.profile.target.platform})?", abort=True)

    try:
        actions = run_deploy(
            spec,
            target,
            out_dir=out_dir,
            git_commit=git_commit,
            policy_severity=policy_severity(warn_only),
            dry_run=dry_run,
            out_plan=out_plan,
            plan_file=plan_file,
            confirm=confirm,
            on_warnings=lambda warnings: report_diagnostics(warnings, state),
        )
    except DeployFailed as exc:
        click.echo("\n".join(failure_summary(exc)), err=True)
        return EXIT_DIFF
    for action in actions:
        verb = "would " if dry_run and action.action in ("create", "update", "delete") else ""
        click.echo(f"{verb}{action.action} {action.resource}" + (f": {action.detail}" if action.detail else ""))
    if dry_run:
        counts = {name: sum(a.action == name for a in actions) for name in ("create", "update", "delete", "unchanged")}
        state.info("plan: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    if out_plan:
        state.info(f"wrote {out_plan}: apply it with `mlcompile deploy --plan {out_plan}`")
    return EXIT_OK
