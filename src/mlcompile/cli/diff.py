"""`mlcompile diff`: what a change to specs or profiles changes in every build."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mlcompile.cli.common import (
    EXIT_DIFF,
    EXIT_OK,
    State,
    cache_dir_option,
    diagnostics_option,
    guarded,
    policy_severity,
    report_diagnostics,
    target_option,
    verbosity_options,
    warn_only_option,
)


@click.command()
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
@guarded
def diff(
    state: State,
    specs: tuple[str, ...],
    targets: tuple[str, ...],
    base_ref: str | None,
    base_dir: str | None,
    output_format: str,
    exit_code: bool,
    artifact: str | None,
    warn_only: bool,
    cache_dir: str | None,
) -> int:
    """Show what a change to each SPEC or its profiles changes in every profile's build.

    Lineage (the spec's sha256, the git commit) is not a change: an edit of comments or
    formatting has no changes. Several SPECs or a quoted glob ('systems/*/mlcompile.yaml')
    give one report; a system whose spec and profiles did not change is not built."""
    from mlcompile.build import expand_spec_patterns
    from mlcompile.diff.render import to_json, to_markdown, to_text
    from mlcompile.diff.systems import DiffRequest, diff_specs

    paths, _ = expand_spec_patterns(specs)
    request = DiffRequest(
        paths, targets, base_ref, base_dir, policy_severity(warn_only), cache_dir, on_warnings=lambda warnings: report_diagnostics(warnings, state)
    )
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
