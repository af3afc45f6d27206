"""The `mlcompile` command line: thin click commands over the library.

Heavy modules (pydantic models, targets, cloud SDKs) are imported inside the commands that
need them so that `mlcompile --help` and `--version` start instantly."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import click

from mlcompile import __version__

EXIT_OK, EXIT_DIFF, EXIT_USER_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130

# pydantic looks for plugins by scanning the entry points of every installed distribution
# the first time a model is built (~15 ms with the cloud SDKs installed); the CLI uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


class _State:
    def __init__(self) -> None:
        self.verbosity = 0

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            click.echo(message, err=True)


def _report(diagnostics: Sequence[Any], state: _State) -> None:
    from mlcompile.diagnostics import render_text

    shown = [d for d in diagnostics if d.severity == "error" or state.verbosity >= 0]
    if shown:
        click.echo(render_text(shown), err=True)


def _printable(text: object) -> str:
    from mlcompile.diagnostics import escape_terminal

    return escape_terminal(str(text))


def _guarded(command: Callable[..., int | None]) -> Callable[..., None]:
    """Turn mlcompile's own errors into diagnostics and exit 2, and anything else into a
    one-line internal-error report (the traceback only with -v): never a traceback for bad input."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from mlcompile.errors import MLCompileError, SpecError

        state: _State = click.get_current_context().find_object(_State) or _State()
        try:
            code = command(*args, **kwargs)
        except SpecError as exc:
            _report(exc.diagnostics, state)
            errors = sum(1 for d in exc.diagnostics if d.severity == "error")
            click.echo(f"{errors} error{'s' if errors != 1 else ''}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except MLCompileError as exc:
            if state.verbosity > 0 and exc.__cause__ is not None:
                traceback.print_exception(exc.__cause__)
            click.echo(f"error: {_printable(exc)}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            # 130 like a shell (128 + SIGINT): not 1, which says a deploy failed or a diff was found
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # a bug in mlcompile, not in the user's input
            if state.verbosity > 0:
                traceback.print_exc()
            click.echo(f"internal error: {type(exc).__name__}: {_printable(exc)} (please report it; -v shows the traceback)", err=True)
            sys.exit(EXIT_INTERNAL)
        sys.exit(code or EXIT_OK)

    return run


def _adjust_verbosity(delta: int) -> Callable[[click.Context, click.Parameter, int], None]:
    def callback(ctx: click.Context, _param: click.Parameter, count: int) -> None:
        if count:
            ctx.ensure_object(_State).verbosity += delta * count

    return callback


def verbosity_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """-q/-v on every command as well as on the group (`mlcompile validate -q …`)."""
    command = click.option("-q", "--quiet", count=True, expose_value=False, callback=_adjust_verbosity(-1), help="Print only errors.")(command)
    return click.option("-v", "--verbose", count=True, expose_value=False, callback=_adjust_verbosity(1), help="Print more.")(command)


spec_argument = click.argument("spec", type=click.Path(dir_okay=False))
target_option = click.option(
    "--target", "-t", "targets", multiple=True, type=click.Path(), metavar="PROFILE",
    help="Target profile file, or a folder of them (repeatable). Default for validate: targets/ beside the spec.",
)  # fmt: skip


warn_only_option = click.option(
    "--warn-only", is_flag=True,
    help="Report violations of a profile's policy as warnings instead of errors (other errors still fail).",
)  # fmt: skip


def _policy_severity(warn_only: bool) -> Literal["error", "warning"]:
    return "warning" if warn_only else "error"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="mlcompile")
@click.option("-q", "--quiet", count=True, help="Print only errors.")
@click.option("-v", "--verbose", count=True, help="Print more (repeat for more).")
@click.pass_context
def main(ctx: click.Context, quiet: int, verbose: int) -> None:
    """Compile one declarative ML-system spec into Kubeflow, Vertex AI, SageMaker and Azure ML
    pipelines, or run it on this machine."""
    state = ctx.ensure_object(_State)
    state.verbosity = verbose - quiet


@main.command()
@verbosity_options
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="SPEC...")
@target_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@warn_only_option
@click.pass_obj
@_guarded
def validate(state: _State, specs: tuple[str, ...], targets: tuple[str, ...], output_format: str, warn_only: bool) -> int:
    """Check each SPEC (and the profiles) against the schema and every cross-reference rule."""
    from mlcompile.build import ProfileSet, compile_system, resolve_profiles
    from mlcompile.errors import SpecError

    diagnostics = []
    valid_lines = []
    for spec in specs:
        try:
            profile_set = resolve_profiles(spec, targets)
        except SpecError as exc:  # still check the spec on its own, to report both at once
            diagnostics += exc.diagnostics
            profile_set = ProfileSet([], None)
        try:
            compilation = compile_system(spec, profile_set, render=False, policy_severity=_policy_severity(warn_only))
        except SpecError as exc:
            diagnostics += exc.diagnostics
            continue
        diagnostics += compilation.warnings
        if any(d.severity == "error" for d in diagnostics):
            continue
        names = ", ".join(p.name for p in compilation.profiles)
        valid_lines.append(f"{spec}: valid" + (f" for {names}" if names else " (no target profiles found; pass --target to check builds)"))
    failed = any(d.severity == "error" for d in diagnostics)
    if output_format == "json":
        click.echo(json.dumps({"valid": not failed, "diagnostics": [d.to_json() for d in diagnostics]}, indent=2, sort_keys=True))
        return EXIT_USER_ERROR if failed else EXIT_OK
    if failed:
        raise SpecError(diagnostics)
    _report(diagnostics, state)
    for line in valid_lines:
        state.info(line)
    return EXIT_OK


@main.command()
@verbosity_options
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="SPEC...")
@target_option
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder; one subfolder per profile (per system and profile for several specs).")
@click.option(
    "--git-commit", default="auto", show_default=True, metavar="auto|none|SHA",
    help="Commit recorded as lineage on every resource: asked from git, left out, or given.",
)  # fmt: skip
@warn_only_option
@click.pass_obj
@_guarded
def build(state: _State, specs: tuple[str, ...], targets: tuple[str, ...], out_dir: str, git_commit: str, warn_only: bool) -> int:
    """Compile each SPEC for each --target profile into OUT/<profile>/ with a manifest.json.

    With several SPECs (or a quoted glob such as 'systems/*/mlcompile.yaml') each system goes
    to OUT/<system name>/<profile>/; all specs are checked before anything is written."""
    from mlcompile.build import compile_systems, expand_spec_patterns, refuse_credential_leaks, resolve_profiles, safe_folder_name, write_builds
    from mlcompile.errors import UsageError

    if not targets:
        raise UsageError("build needs at least one --target PROFILE")
    paths, patterned = expand_spec_patterns(specs)
    profiles = resolve_profiles(paths[0], targets)  # --target is required: the same profiles for every spec
    compilations = compile_systems(
        paths, profiles, render=True, git_commit=None if git_commit == "none" else git_commit, policy_severity=_policy_severity(warn_only)
    )
    nested = len(paths) > 1 or patterned
    if nested:
        names: dict[str, str] = {}
        for spec, compilation in zip(paths, compilations):
            name = compilation.bundle.base.system.metadata.name
            if name in names:
                raise UsageError(f"{names[name]} and {spec} both define system '{name}': their builds would share {out_dir}/{name}/")
            names[name] = spec
    for compilation in compilations:
        _report(compilation.warnings, state)
    folders = [Path(out_dir) / safe_folder_name(c.bundle.base.system.metadata.name, "system") if nested else Path(out_dir) for c in compilations]
    for compilation, folder_of in zip(compilations, folders):  # every system, before anything is written
        refuse_credential_leaks(compilation.results, folder_of)
    for compilation, folder_of in zip(compilations, folders):
        for folder, result in zip(write_builds(compilation.results, folder_of, on_wait=state.info), compilation.results):
            state.info(f"built {result.profile.name} ({result.profile.target.platform}): {folder}/ ({len(result.files)} files + manifest.json)")
    return EXIT_OK


@main.command()
@verbosity_options
@click.option("--kind", type=click.Choice(["system", "target", "plan", "diff"]), default="system", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@_guarded
def schema(kind: str, output: str | None) -> int:
    """Print the JSON Schema of a system spec, a target profile, plan.json or diff --format json."""
    from mlcompile.schema import schema_text

    text = schema_text(kind)  # type: ignore[arg-type]
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)
    return EXIT_OK


@main.command("targets")
@verbosity_options
@_guarded
def list_targets() -> int:
    """List the installed targets, their package and whether their SDK is installed."""
    from mlcompile.targets.registry import describe_targets

    rows = [("TARGET", "PACKAGE", "MODULE", "STATUS")]
    for info in describe_targets():
        status = "ready" if info.ready else f"missing {', '.join(info.missing)}" + (f" (pip install 'mlcompile[{info.extra}]')" if info.extra else "")
        rows.append((info.name, info.distribution or "-", info.module, status))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
    return EXIT_OK


@main.command()
@verbosity_options
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--name", default=None, help="System name (default: the folder's name).")
@click.pass_obj
@_guarded
def init(state: _State, directory: str, name: str | None) -> int:
    """Scaffold a spec, a local profile and sample data in an empty DIRECTORY."""
    from mlcompile.scaffold import scaffold

    for path in scaffold(Path(directory), name):
        state.info(f"wrote {path}")
    state.info(f"next: mlcompile validate {Path(directory) / 'mlcompile.yaml'}")
    return EXIT_OK


@main.command()
@verbosity_options
@spec_argument
@click.option("--target", "-t", "target", type=click.Path(dir_okay=False), metavar="PROFILE", help="Profile to plan for (default: this machine).")
@click.option("--format", "output_format", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@click.pass_obj
@_guarded
def graph(state: _State, spec: str, target: str | None, output_format: str) -> int:
    """Print the plan's DAGs (training, batch scoring, monitoring) as Mermaid or Graphviz dot."""
    from mlcompile.build import compile_system, implicit_local_profile, resolve_profiles
    from mlcompile.graph import to_dot, to_mermaid

    profiles = resolve_profiles(spec, (target,)) if target else implicit_local_profile()
    compilation = compile_system(spec, profiles, render=False)
    _report(compilation.warnings, state)
    plan = compilation.results[0].plan
    click.echo(_printable(to_mermaid(plan) if output_format == "mermaid" else to_dot(plan)), nl=False)
    return EXIT_OK


@main.command()
@verbosity_options
@spec_argument
@click.option("--target", "-t", "target", required=True, type=click.Path(dir_okay=False), metavar="PROFILE", help="Profile to explain.")
@click.option("--files/--no-files", default=True, show_default=True, help="Also list the kinds of file the target writes (renders the build).")
@click.pass_obj
@_guarded
def explain(state: _State, spec: str, target: str, files: bool) -> int:
    """Say in words what SPEC becomes on PROFILE's platform: pipelines and their steps with
    machines, GPUs, replicas and timeouts; the endpoint; schedules, triggers, monitors, registry."""
    from mlcompile.build import compile_system, resolve_profiles
    from mlcompile.explain import explain_plan

    compilation = compile_system(spec, resolve_profiles(spec, (target,)), render=files, git_commit=None)
    _report(compilation.warnings, state)
    (result,) = compilation.results
    click.echo(_printable(explain_plan(result.plan, result.files if files else None)), nl=False)
    return EXIT_OK


@main.command()
@verbosity_options
@spec_argument
@click.option("--target", "-t", "target", required=True, type=click.Path(dir_okay=False), metavar="PROFILE", help="Profile to deploy.")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), help="Keep the build here (default: a temporary folder).")
@click.option("--dry-run", is_flag=True, help="Show what would be created or updated; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--git-commit", default="auto", show_default=True, metavar="auto|none|SHA", help="Commit recorded as lineage.")
@warn_only_option
@click.pass_obj
@_guarded
def deploy(state: _State, spec: str, target: str, out_dir: str | None, dry_run: bool, yes: bool, git_commit: str, warn_only: bool) -> int:
    """Build SPEC for PROFILE and create or update it on the platform through its SDK."""
    import tempfile

    from mlcompile.build import compile_system, resolve_profiles, write_builds
    from mlcompile.errors import UsageError
    from mlcompile.targets.base import Deployable, DeployFailed
    from mlcompile.targets.deadline import DEADLINE_ENV, Clock, deadline_seconds, deploy_deadline
    from mlcompile.targets.registry import load_target

    compilation = compile_system(
        spec, resolve_profiles(spec, (target,)), render=True, git_commit=None if git_commit == "none" else git_commit,
        policy_severity=_policy_severity(warn_only),
    )  # fmt: skip
    _report(compilation.warnings, state)
    (result,) = compilation.results
    backend = load_target(result.profile.target.platform)
    if not isinstance(backend, Deployable):
        raise UsageError(f"target '{backend.name}' cannot deploy; build it and submit the files with the platform's tools")
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError("deploy changes a live platform: pass --yes (or --dry-run) when not running interactively")
        click.confirm(f"deploy {result.plan.system} to {result.profile.name} ({result.profile.target.platform})?", abort=True)
    with tempfile.TemporaryDirectory(prefix="mlcompile-deploy-") as scratch:
        (folder,) = write_builds([result], out_dir or scratch)
        clock = Clock()
        try:
            with deploy_deadline(deadline_seconds()) as clock:
                actions = backend.deploy(result.plan, folder, dry_run=dry_run)
        except DeployFailed as exc:
            if clock.passed:
                exc = DeployFailed(f"gave up after {deadline_seconds():g}s ({DEADLINE_ENV}): {exc}", exc.applied, exc.not_applied)
            _deploy_failure_summary(exc)
            return EXIT_DIFF
        except Exception as exc:  # out of time where a target could not record what it applied
            if not clock.passed:
                raise
            _deploy_failure_summary(DeployFailed(f"gave up after {deadline_seconds():g}s ({DEADLINE_ENV}): {exc}"))
            return EXIT_DIFF
    verb = "would " if dry_run else ""
    for action in actions:
        click.echo(f"{verb}{action.action} {action.resource}" + (f": {action.detail}" if action.detail else ""))
    return EXIT_OK


def _deploy_failure_summary(exc: Any) -> None:
    """What a failed deploy did and did not do, resource by resource: never half a change in
    silence. `unchanged` resources were already in place; `not applied` ones were not changed."""
    click.echo(f"deploy failed: {_printable(exc)}", err=True)
    if exc.applied:
        click.echo("applied before the failure:", err=True)
        for action in exc.applied:
            click.echo(f"  {action.action} {action.resource}" + (f": {action.detail}" if action.detail else ""), err=True)
    else:
        click.echo("applied before the failure: nothing", err=True)
    if exc.not_applied is None:  # a target that cannot list its resources
        click.echo("not applied: everything after that", err=True)
    elif exc.not_applied:
        click.echo("not applied:", err=True)
        for resource in exc.not_applied:
            click.echo(f"  {resource}", err=True)
    else:
        click.echo("not applied: nothing", err=True)
    click.echo("deploy again once the platform accepts it: what was applied reports unchanged, the rest is applied", err=True)


@main.command()
@verbosity_options
@spec_argument
@target_option
@click.option("--base", "base_ref", metavar="GIT_REF", help="Compare with the spec and profiles at this git revision (default HEAD).")
@click.option("--base-dir", type=click.Path(file_okay=False), help="Compare with an earlier `build --out` folder instead.")
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything changed, 0 when nothing did (2 on errors).")
@warn_only_option
@click.pass_obj
@_guarded
def diff(
    state: _State, spec: str, targets: tuple[str, ...], base_ref: str | None, base_dir: str | None, output_format: str, exit_code: bool, warn_only: bool
) -> int:
    """Show what a change to SPEC or its profiles changes in every profile's build."""
    from mlcompile.build import discover_profiles, expand_profile_paths
    from mlcompile.diff import diff_builds
    from mlcompile.diff.render import to_json, to_markdown, to_text
    from mlcompile.diff.sources import build_git_ref, build_working_tree, read_build_dir
    from mlcompile.errors import UsageError

    if base_ref and base_dir:
        raise UsageError("give --base or --base-dir, not both")
    profiles = expand_profile_paths(targets) or discover_profiles(spec) or []
    if not profiles:
        raise UsageError("diff needs --target PROFILE (or a targets/ folder beside the spec)")
    head = build_working_tree(spec, profiles, policy_severity=_policy_severity(warn_only), on_warnings=lambda warnings: _report(warnings, state))
    if base_dir:
        base, label = read_build_dir(base_dir, sorted(head)), base_dir
    else:
        label = base_ref or "HEAD"
        base = build_git_ref(label, spec, profiles, sorted(head), policy_severity=_policy_severity(warn_only))
    report = diff_builds(label, base, head)
    if output_format == "json":
        click.echo(to_json(report), nl=False)
    elif output_format == "markdown":
        click.echo(to_markdown(report, {name: side.plan for name, side in head.items() if side.plan is not None}), nl=False)
    else:
        click.echo(to_text(report), nl=False)
    return EXIT_DIFF if exit_code and report.changed else EXIT_OK


@main.command()
@verbosity_options
@spec_argument
@click.option("--target", "-t", "target", type=click.Path(dir_okay=False), metavar="PROFILE", help="A platform: local profile (default: this machine, workdir .mlcompile).")
@click.option("--only", "only", multiple=True, metavar="STEP", help="Run only this step or pipeline (repeatable); earlier steps' newest outputs are reused.")
@click.option("--resume", is_flag=True, help="Skip steps whose inputs, config and code are unchanged since they last succeeded.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False), help="Override the profile's local.workdir.")
@click.option("--isolation", type=click.Choice(["fork", "subprocess"]), default="fork", show_default=True,
              help="fork: steps fork from a warm server; subprocess: each step is a fresh `python -m mlcompile.runtime`.")  # fmt: skip
@click.option("--no-retrain", is_flag=True, help="Do not start the training pipeline when monitoring asks for retraining.")
@warn_only_option
@click.pass_obj
@_guarded
def run(
    state: _State, spec: str, target: str | None, only: tuple[str, ...], resume: bool, output_format: str, workdir: str | None, isolation: str,
    no_retrain: bool, warn_only: bool,
) -> int:  # fmt: skip
    """Run SPEC on this machine: training, batch scoring, monitoring (and retraining on a breach)."""
    from mlcompile.local.progress import render_summary, reporter_for
    from mlcompile.local.run import execute, prepare

    prepared = prepare(spec, target, workdir, policy_severity=_policy_severity(warn_only))
    _report(prepared.warnings, state)
    summary = execute(prepared, only=only, resume=resume, mode=isolation, reporter=reporter_for(state.verbosity, output_format), retrain=not no_retrain)
    if output_format == "json":
        click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
    elif state.verbosity >= 0 or summary["status"] != "succeeded":
        click.echo(render_summary(summary))
    return EXIT_DIFF if summary["status"] == "failed" else EXIT_OK


@main.command()
@verbosity_options
@spec_argument
@click.option("--target", "-t", "target", type=click.Path(dir_okay=False), metavar="PROFILE", help="A platform: local profile (default: this machine).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--version", "model_version", default=None, help="Serve this model version (default: alias production, else the newest).")
@click.option("--workdir", type=click.Path(file_okay=False), help="Override the profile's local.workdir.")
@click.pass_obj
@_guarded
def serve(state: _State, spec: str, target: str | None, host: str, port: int, model_version: str | None, workdir: str | None) -> int:
    """Answer predictions over HTTP for SPEC's registered model (POST /predict)."""
    from mlcompile.local.run import prepare
    from mlcompile.local.serve import serve_forever

    prepared = prepare(spec, target, workdir)
    _report(prepared.warnings, state)
    serve_forever(prepared, host=host, port=port, version=model_version, log=state.info)
    return EXIT_OK
