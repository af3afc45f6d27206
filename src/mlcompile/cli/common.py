"""What every command shares: its state (-q/-v, the diagnostics format), how errors are
reported (located diagnostics, exit statuses, never a traceback for bad input), and the
options several commands take."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Literal

import click

EXIT_OK, EXIT_DIFF, EXIT_USER_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


class State:
    def __init__(self) -> None:
        self.verbosity = 0
        self.diagnostics_format = "text"  # or "github": GitHub Actions annotations

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            click.echo(message, err=True)


def report_diagnostics(diagnostics: Sequence[Any], state: State) -> None:
    from mlcompile.diagnostics import render_github, render_text

    shown = [d for d in diagnostics if d.severity == "error" or state.verbosity >= 0]
    if shown:
        click.echo((render_github if state.diagnostics_format == "github" else render_text)(shown), err=True)


def report_error(message: str, state: State) -> None:
    """An error with no place in a file; with --format github also an annotation of the run."""
    from mlcompile.diagnostics import render_github_message

    click.echo(render_github_message("error", message) if state.diagnostics_format == "github" else message, err=True)


def printable(text: object) -> str:
    from mlcompile.diagnostics import escape_terminal

    return escape_terminal(str(text))


def guarded(command: Callable[..., int | None]) -> Callable[..., None]:
    """Turn mlcompile's own errors into diagnostics and exit 2, and anything else into a
    one-line internal-error report (the traceback only with -v): never a traceback for bad input."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from mlcompile.errors import MLCompileError, SpecError
        from mlcompile.secrets import redact

        state: State = click.get_current_context().find_object(State) or State()
        try:
            code = command(*args, **kwargs)
        except SpecError as exc:
            report_diagnostics(exc.diagnostics, state)
            errors = sum(1 for d in exc.diagnostics if d.severity == "error")
            click.echo(f"{errors} error{'s' if errors != 1 else ''}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except MLCompileError as exc:
            if state.verbosity > 0 and exc.__cause__ is not None:
                traceback.print_exception(exc.__cause__)
            report_error(redact(f"error: {printable(exc)}"), state)
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
                report_error(redact(f"error: {printable(where)}{exc.strerror or exc}"), state)
                sys.exit(EXIT_USER_ERROR)
            if state.verbosity > 0:
                traceback.print_exc()
            report_error(redact(f"internal error: {type(exc).__name__}: {printable(exc)} (please report it; -v shows the traceback)"), state)
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
            ctx.ensure_object(State).verbosity += delta * count

    return callback


def verbosity_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """-q/-v on every command as well as on the group (`mlcompile validate -q …`)."""
    command = click.option("-q", "--quiet", count=True, expose_value=False, callback=_adjust_verbosity(-1), help="Print only errors.")(command)
    return click.option("-v", "--verbose", count=True, expose_value=False, callback=_adjust_verbosity(1), help="Print more.")(command)


spec_argument = click.argument("spec", type=click.Path(dir_okay=False))
target_option = click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    type=click.Path(),
    metavar="PROFILE",
    help="Target profile file, or a folder of them (repeatable). Default: every profile in targets/ beside the spec.",
)


def profile_option(help: str, *, file_only: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--target PROFILE of a command that acts on one profile."""
    return click.option("--target", "-t", "target", type=click.Path(dir_okay=not file_only), metavar="PROFILE", help=help)


warn_only_option = click.option(
    "--warn-only",
    is_flag=True,
    help="Report violations of a profile's policy as warnings instead of errors (other errors still fail).",
)


def set_diagnostics_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value == "github":
        ctx.ensure_object(State).diagnostics_format = "github"
    return value


diagnostics_option = click.option(
    "--diagnostics",
    type=click.Choice(["text", "github"]),
    default="text",
    show_default=True,
    expose_value=False,
    callback=set_diagnostics_format,
    help="How errors are printed: text, or GitHub Actions annotations on the file and line.",
)


cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Keep builds here by the hash of their inputs (spec, profiles, mlcompile): an unchanged system is not built again.",
)


def policy_severity(warn_only: bool) -> Literal["error", "warning"]:
    return "warning" if warn_only else "error"


def with_options(options: list[Callable[..., Any]]) -> Callable[..., Any]:
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate
