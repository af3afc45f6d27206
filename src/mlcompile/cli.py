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
        self.diagnostics_format = "text"  # or "github": GitHub Actions annotations

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            click.echo(message, err=True)


def _report(diagnostics: Sequence[Any], state: _State) -> None:
    from mlcompile.diagnostics import render_github, render_text

    shown = [d for d in diagnostics if d.severity == "error" or state.verbosity >= 0]
    if shown:
        click.echo((render_github if state.diagnostics_format == "github" else render_text)(shown), err=True)


def _report_error(message: str, state: _State) -> None:
    """An error with no place in a file; with --format github also an annotation of the run."""
    from mlcompile.diagnostics import render_github_message

    click.echo(render_github_message("error", message) if state.diagnostics_format == "github" else message, err=True)


def _printable(text: object) -> str:
    from mlcompile.diagnostics import escape_terminal

    return escape_terminal(str(text))


def _guarded(command: Callable[..., int | None]) -> Callable[..., None]:
    """Turn mlcompile's own errors into diagnostics and exit 2, and anything else into a
    one-line internal-error report (the traceback only with -v): never a traceback for bad input."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from mlcompile.errors import MLCompileError, SpecError
        from mlcompile.secrets import redact

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
            _report_error(redact(f"error: {_printable(exc)}"), state)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            # 130 like a shell (128 + SIGINT): not 1, which says a deploy failed or a diff was found
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # a bug in mlcompile, not in the user's input
            if isinstance(exc, OSError) and _environmental(exc):
                # a full or read-only disk, a missing folder, a permission: the machine's, not a bug
                where = f"{exc.filename}: " if exc.filename is not None else ""
                _report_error(redact(f"error: {_printable(where)}{exc.strerror or exc}"), state)
                sys.exit(EXIT_USER_ERROR)
            if state.verbosity > 0:
                traceback.print_exc()
            _report_error(redact(f"internal error: {type(exc).__name__}: {_printable(exc)} (please report it; -v shows the traceback)"), state)
            sys.exit(EXIT_INTERNAL)
        sys.exit(code or EXIT_OK)

    return run


def _environmental(exc: OSError) -> bool:
    """An OSError about a path, or a full or read-only disk (whose write errors name none)."""
    import errno

    return exc.filename is not None or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


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
    help="Target profile file, or a folder of them (repeatable). Default: every profile in targets/ beside the spec.",
)  # fmt: skip


warn_only_option = click.option(
    "--warn-only", is_flag=True,
    help="Report violations of a profile's policy as warnings instead of errors (other errors still fail).",
)  # fmt: skip


def _set_diagnostics_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value == "github":
        ctx.ensure_object(_State).diagnostics_format = "github"
    return value


diagnostics_option = click.option(
    "--diagnostics", type=click.Choice(["text", "github"]), default="text", show_default=True, expose_value=False,
    callback=_set_diagnostics_format, help="How errors are printed: text, or GitHub Actions annotations on the file and line.",
)  # fmt: skip


cache_dir_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False), metavar="DIR",
    help="Keep builds here by the hash of their inputs (spec, profiles, mlcompile): an unchanged system is not built again.",
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


def _validate_with_profiles(specs: Sequence[str], targets: Sequence[str], warn_only: bool) -> tuple[list[Any], list[str]]:
    from mlcompile.build import ProfileSet, compile_system, select_profiles
    from mlcompile.errors import SpecError
    from mlcompile.spec.fastcheck import NO_PROFILES

    diagnostics = []
    valid_lines = []
    for spec in specs:
        try:
            profile_set = select_profiles(spec, targets, "validate")
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
        valid_lines.append(f"{spec}: valid" + (f" for {names}" if names else NO_PROFILES))
    return diagnostics, valid_lines


@main.command()
@verbosity_options
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="SPEC...")
@target_option
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
    callback=_set_diagnostics_format, help="github: errors as GitHub Actions annotations on the file and line.",
)  # fmt: skip
@warn_only_option
@click.pass_obj
@_guarded
def validate(state: _State, specs: tuple[str, ...], targets: tuple[str, ...], output_format: str, warn_only: bool) -> int:
    """Check each SPEC (and the profiles) against the schema and every cross-reference rule."""
    from mlcompile.spec.fastcheck import validate_specs_alone  # without pydantic

    quick = None if targets else validate_specs_alone(specs)
    if quick is not None:
        diagnostics, valid_lines = quick
    else:
        diagnostics, valid_lines = _validate_with_profiles(specs, targets, warn_only)
    failed = any(d.severity == "error" for d in diagnostics)
    if output_format == "json":
        click.echo(json.dumps({"valid": not failed, "diagnostics": [d.to_json() for d in diagnostics]}, indent=2, sort_keys=True))
        return EXIT_USER_ERROR if failed else EXIT_OK
    if failed:
        from mlcompile.errors import SpecError

        raise SpecError(diagnostics)
    _report(diagnostics, state)
    for line in valid_lines:
        state.info(line)
    return EXIT_OK


@main.command()
@verbosity_options
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="SPEC...")
@target_option
@click.option(
    "--out",
    "-o",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder; one subfolder per profile (per system and profile for several specs).",
)
@click.option(
    "--git-commit", default="auto", show_default=True, metavar="auto|none|SHA",
    help="Commit recorded as lineage on every resource: asked from git, left out, or given.",
)  # fmt: skip
@warn_only_option
@diagnostics_option
@cache_dir_option
@click.pass_obj
@_guarded
def build(state: _State, specs: tuple[str, ...], targets: tuple[str, ...], out_dir: str, git_commit: str, warn_only: bool, cache_dir: str | None) -> int:
    """Compile each SPEC for each --target profile into OUT/<profile>/ with a manifest.json.

    With several SPECs (or a quoted glob such as 'systems/*/mlcompile.yaml') each system goes
    to OUT/<system name>/<profile>/; all specs are checked before anything is written."""
    from mlcompile.build import (
        compile_systems,
        expand_spec_patterns,
        output_errors,
        refuse_credential_leaks,
        refuse_foreign_folders,
        safe_folder_name,
        select_profiles,
        write_builds,
    )  # fmt: skip
    from mlcompile.errors import UsageError

    paths, patterned = expand_spec_patterns(specs)
    profiles = select_profiles(paths[0], targets, "build")
    if not targets and len({str(Path(p).parent.resolve()) for p in paths}) > 1:
        raise UsageError("several specs in different folders build for the same profiles: pass them with --target")
    compilations = compile_systems(
        paths, profiles, render=True, git_commit=None if git_commit == "none" else git_commit, policy_severity=_policy_severity(warn_only),
        cache_dir=cache_dir,
    )  # fmt: skip
    nested = len(paths) > 1 or patterned
    if nested:
        names: dict[str, str] = {}
        for spec, compilation in zip(paths, compilations):
            name = compilation.system
            if name in names:
                raise UsageError(f"{names[name]} and {spec} both define system '{name}': their builds would share {out_dir}/{name}/")
            names[name] = spec
    for compilation in compilations:
        _report(compilation.warnings, state)
    folders = [Path(out_dir) / safe_folder_name(c.system, "system") if nested else Path(out_dir) for c in compilations]
    for compilation, folder_of in zip(compilations, folders):  # every system, before anything is written
        refuse_credential_leaks(compilation.results, folder_of)
        with output_errors(folder_of):
            refuse_foreign_folders(compilation.results, folder_of)
    for compilation, folder_of in zip(compilations, folders):
        for folder, result in zip(write_builds(compilation.results, folder_of, on_wait=state.info), compilation.results):
            state.info(f"built {result.profile.name} ({result.profile.target.platform}): {folder}/ ({len(result.files)} files + manifest.json)")
    return EXIT_OK


@main.command()
@verbosity_options
@click.option("--kind", type=click.Choice(["system", "target", "plan", "diff", "deploy-plan"]), default="system", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@_guarded
def schema(kind: str, output: str | None) -> int:
    """Print the JSON Schema of a system spec, a target profile, plan.json, diff --format json or a saved deploy plan."""
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
    """Scaffold a spec, a local profile, sample data and a .gitignore in DIRECTORY (it may hold
    other files; init refuses only to overwrite one)."""
    from mlcompile.scaffold import scaffold

    for path in scaffold(Path(directory), name):
        state.info(f"wrote {path}")
    state.info(f"next: mlcompile validate {Path(directory) / 'mlcompile.yaml'}")
    return EXIT_OK


@main.command()
@verbosity_options
@spec_argument
@click.option("--target", "-t", "target", type=click.Path(dir_okay=False), metavar="PROFILE",
              help="Profile to plan for (default: the local profile in targets/ beside the spec, else this machine).")  # fmt: skip
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["mermaid", "markdown", "dot"]),
    default="mermaid",
    show_default=True,
    help="mermaid: the bare flowchart; markdown: the flowchart in a ```mermaid fence, ready to paste into a PR; dot: Graphviz.",
)
@click.pass_obj
@_guarded
def graph(state: _State, spec: str, target: str | None, output_format: str) -> int:
    """Print the plan's DAGs (training, batch scoring, monitoring) as Mermaid or Graphviz dot."""
    from mlcompile.build import compile_system, select_profiles
    from mlcompile.graph import to_dot, to_markdown, to_mermaid

    compilation = compile_system(spec, select_profiles(spec, (target,) if target else (), "graph"), render=False)
    _report(compilation.warnings, state)
    plan = compilation.results[0].plan
    render = {"mermaid": to_mermaid, "markdown": to_markdown, "dot": to_dot}[output_format]
    click.echo(_printable(render(plan)), nl=False)
    return EXIT_OK


@main.command()
@verbosity_options
@spec_argument
@click.option(
    "--target",
    "-t",
    "target",
    type=click.Path(dir_okay=False),
    metavar="PROFILE",
    help="Profile to explain (default: the one profile in targets/ beside the spec).",
)
@click.option("--files/--no-files", default=True, show_default=True, help="Also list the kinds of file the target writes (renders the build).")
@click.pass_obj
@_guarded
def explain(state: _State, spec: str, target: str, files: bool) -> int:
    """Say in words what SPEC becomes on PROFILE's platform: pipelines and their steps with
    machines, GPUs, replicas and timeouts; the endpoint; schedules, triggers, monitors, registry."""
    from mlcompile.build import compile_system, select_profiles
    from mlcompile.explain import explain_plan

    compilation = compile_system(spec, select_profiles(spec, (target,) if target else (), "explain"), render=files, git_commit=None)
    _report(compilation.warnings, state)
    (result,) = compilation.results
    click.echo(_printable(explain_plan(result.plan, result.files if files else None)), nl=False)
    return EXIT_OK


deploy_target_option = click.option(
    "--target", "-t", "target", type=click.Path(), metavar="PROFILE",
    help="Profile to deploy (default: the one profile in targets/ beside the spec; with --plan: the plan's).",
)  # fmt: skip
deploy_options = [
    click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), help="Keep the build here (default: a temporary folder)."),
    click.option("--git-commit", default=None, metavar="auto|none|SHA", help="Commit recorded as lineage (default auto; with --plan, the plan's)."),
    warn_only_option,
]


def _with(options: list[Callable[..., Any]]) -> Callable[..., Any]:
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@main.command()
@verbosity_options
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@deploy_target_option
@_with(deploy_options)
@click.option("--dry-run", is_flag=True, help="Compare with what is on the platform and print the plan; change nothing.")
@click.option("--out-plan", type=click.Path(dir_okay=False), metavar="FILE", help="With --dry-run: also write the plan to FILE (JSON), for --plan.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Apply exactly this reviewed plan; refused (exit 2) if the build or the platform changed since it was made.")  # fmt: skip
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (a --plan was reviewed: it never asks).")
@click.pass_obj
@_guarded
def deploy(
    state: _State, spec: str | None, target: str | None, out_dir: str | None, git_commit: str | None, warn_only: bool, dry_run: bool,
    out_plan: str | None, plan_file: str | None, yes: bool,
) -> int:  # fmt: skip
    """Build SPEC for PROFILE, compare it with what is on the platform, and create or update
    what differs through the platform's SDK. `--dry-run --out-plan FILE` saves the comparison;
    `deploy --plan FILE` applies exactly that, or refuses."""
    from mlcompile.errors import UsageError

    if plan_file and (dry_run or out_plan):
        raise UsageError("--plan applies a saved plan; --dry-run and --out-plan make one: give one or the other")
    if out_plan and not dry_run:
        raise UsageError("--out-plan saves the plan of a --dry-run: add --dry-run (or use `mlcompile plan`)")
    return _deploy(state, spec, target, out_dir, git_commit, warn_only, dry_run=dry_run, out_plan=out_plan, plan_file=plan_file, yes=yes)


@main.command("plan")
@verbosity_options
@click.argument("spec", type=click.Path(dir_okay=False))
@deploy_target_option
@_with(deploy_options)
@click.option("--out-plan", type=click.Path(dir_okay=False), metavar="FILE", help="Also write the plan to FILE (JSON), for `deploy --plan`.")
@click.pass_obj
@_guarded
def plan_command(state: _State, spec: str, target: str | None, out_dir: str | None, git_commit: str | None, warn_only: bool, out_plan: str | None) -> int:
    """The same as `deploy --dry-run`: compare SPEC's build for PROFILE with what is on the
    platform and print, per resource, create / update / delete / unchanged."""
    return _deploy(state, spec, target, out_dir, git_commit, warn_only, dry_run=True, out_plan=out_plan, plan_file=None, yes=False)


def _deploy(
    state: _State, spec: str | None, target: str | None, out_dir: str | None, git_commit: str | None, warn_only: bool, *,
    dry_run: bool, out_plan: str | None, plan_file: str | None, yes: bool,
) -> int:  # fmt: skip
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
            spec, target, out_dir=out_dir, git_commit=git_commit, policy_severity=_policy_severity(warn_only), dry_run=dry_run,
            out_plan=out_plan, plan_file=plan_file, confirm=confirm, on_warnings=lambda warnings: _report(warnings, state),
        )  # fmt: skip
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


@main.command()
@verbosity_options
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="SPEC...")
@target_option
@click.option("--base", "base_ref", metavar="GIT_REF", help="Compare with the spec and profiles at this git revision (default HEAD).")
@click.option("--base-dir", type=click.Path(file_okay=False), help="Compare with an earlier `build --out` folder instead.")
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything changed, 0 when nothing did (2 on errors).")
@click.option("--artifact", type=click.Path(dir_okay=False), metavar="FILE", help="Also write the full diff (nothing cut) to FILE, as text.")
@warn_only_option
@diagnostics_option
@cache_dir_option
@click.pass_obj
@_guarded
def diff(
    state: _State, specs: tuple[str, ...], targets: tuple[str, ...], base_ref: str | None, base_dir: str | None, output_format: str, exit_code: bool,
    artifact: str | None, warn_only: bool, cache_dir: str | None,
) -> int:  # fmt: skip
    """Show what a change to each SPEC or its profiles changes in every profile's build.

    Lineage (the spec's sha256, the git commit) is not a change: an edit of comments or
    formatting has no changes. Several SPECs or a quoted glob ('systems/*/mlcompile.yaml')
    give one report; a system whose spec and profiles did not change is not built."""
    from mlcompile.build import expand_spec_patterns
    from mlcompile.diff.render import to_json, to_markdown, to_text
    from mlcompile.diff.systems import DiffRequest, diff_specs

    paths, _ = expand_spec_patterns(specs)
    request = DiffRequest(
        paths, targets, base_ref, base_dir, _policy_severity(warn_only), cache_dir, on_warnings=lambda warnings: _report(warnings, state)
    )  # fmt: skip
    report, plans = diff_specs(request)
    if artifact:
        _write_atomically(Path(artifact), to_text(report, full=True))
    if output_format == "json":
        click.echo(to_json(report), nl=False)
    elif output_format == "markdown":
        click.echo(to_markdown(report, plans, artifact=artifact), nl=False)
    else:
        click.echo(to_text(report, artifact=artifact), nl=False)
    return EXIT_DIFF if exit_code and report.changed else EXIT_OK


def _write_atomically(path: Path, text: str) -> None:
    import tempfile

    from mlcompile.errors import UsageError

    try:
        handle, staged = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(staged, path)
    except OSError as exc:
        raise UsageError(f"--artifact {path}: cannot write it: {exc.strerror or exc}") from None


@main.command()
@verbosity_options
@spec_argument
@click.option(
    "--target",
    "-t",
    "target",
    type=click.Path(dir_okay=False),
    metavar="PROFILE",
    help="A platform: local profile (default: the local profile in targets/ beside the spec, else this machine, workdir .mlcompile).",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="STEP",
    help="Run only this step or pipeline (repeatable); earlier steps' newest outputs are reused. With --emulate: training, batch-scoring or monitoring.",
)
@click.option("--resume", is_flag=True, help="Skip steps whose inputs, config and code are unchanged since they last succeeded.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False), help="Override the profile's local.workdir.")
@click.option("--isolation", type=click.Choice(["fork", "subprocess"]), default="fork", show_default=True,
              help="fork: steps fork from a warm server; subprocess: each step is a fresh `python -m mlcompile.runtime`.")  # fmt: skip
@click.option("--no-retrain", is_flag=True, help="Do not start the training pipeline when monitoring asks for retraining.")
@click.option(
    "--emulate",
    is_flag=True,
    help="Build for a Kubeflow, Vertex AI, SageMaker or Azure ML profile and run the built pipelines here as that platform would (docs/emulate.md).",
)
@click.option(
    "--runs",
    type=click.IntRange(1, 10),
    default=1,
    show_default=True,
    help="With --emulate: run training this many times (each new version approved and deployed).",
)
@click.option(
    "--no-approve", is_flag=True, help="With --emulate: leave registered versions pending approval (nothing is deployed, batch and monitoring are skipped)."
)
@warn_only_option
@click.pass_obj
@_guarded
def run(
    state: _State, spec: str, target: str | None, only: tuple[str, ...], resume: bool, output_format: str, workdir: str | None, isolation: str,
    no_retrain: bool, emulate: bool, runs: int, no_approve: bool, warn_only: bool,
) -> int:  # fmt: skip
    """Run SPEC on this machine: training, batch scoring, monitoring (and retraining on a breach)."""
    if emulate:
        return _run_emulated(state, spec, target, workdir, output_format, isolation, only, runs=runs, approve=not no_approve)
    from mlcompile.local.progress import render_summary, reporter_for
    from mlcompile.local.run import execute, prepare

    prepared = prepare(spec, target, workdir, policy_severity=_policy_severity(warn_only), command="run")
    _report(prepared.warnings, state)
    summary = execute(prepared, only=only, resume=resume, mode=isolation, reporter=reporter_for(state.verbosity, output_format), retrain=not no_retrain)
    if output_format == "json":
        click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
    elif state.verbosity >= 0 or summary["status"] != "succeeded":
        click.echo(render_summary(summary))
    return EXIT_DIFF if summary["status"] == "failed" else EXIT_OK


def _run_emulated(
    state: _State, spec: str, target: str | None, workdir: str | None, output_format: str, isolation: str, only: tuple[str, ...], *, runs: int, approve: bool
) -> int:
    from mlcompile.emulate.system import emulate
    from mlcompile.errors import UsageError

    if not target:
        raise UsageError("--emulate needs --target PROFILE (a kubeflow or vertex profile)")
    summary = emulate(
        spec, target, workdir, only=only, isolation=isolation, runs=runs, approve=approve, log=state.info if output_format == "text" else lambda message: None
    )
    if output_format == "json":
        click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
    else:
        for name, status in summary["pipelines"].items():
            click.echo(f"{name}: {status}")
        for failure in summary["failures"]:
            click.echo(f"  failed: {failure['pipeline']}/{failure['task']}: {failure['reason']} (log: {failure['log']})")
        for name, reason in summary["skipped"].items():
            click.echo(f"  skipped: {name}: {reason}")
    return EXIT_DIFF if summary["status"] == "failed" else EXIT_OK


@main.command()
@verbosity_options
@spec_argument
@click.option(
    "--target",
    "-t",
    "target",
    type=click.Path(dir_okay=False),
    metavar="PROFILE",
    help="A platform: local profile (default: the local profile in targets/ beside the spec, else this machine).",
)
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

    prepared = prepare(spec, target, workdir, command="serve")
    _report(prepared.warnings, state)
    serve_forever(prepared, host=host, port=port, version=model_version, log=state.info)
    return EXIT_OK
