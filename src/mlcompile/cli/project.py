"""Commands about the project rather than one system: `init` (a new spec), `targets` (the
installed targets) and `schema` (the JSON Schemas of mlcompile's files)."""

from __future__ import annotations

from pathlib import Path

import click

from mlcompile.cli.common import EXIT_OK, State, guarded, verbosity_options


@click.command()
@verbosity_options
@click.option("--kind", type=click.Choice(["system", "target", "plan", "diff", "deploy-plan"]), default="system", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@guarded
def schema(kind: str, output: str | None) -> int:
    """Print the JSON Schema of a system spec, a target profile, plan.json, diff --format json or a saved deploy plan."""
    from mlcompile.schema import schema_text

    text = schema_text(kind)  # type: ignore[arg-type]
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)
    return EXIT_OK


@click.command("targets")
@verbosity_options
@guarded
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


@click.command()
@verbosity_options
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--name", default=None, help="System name (default: the folder's name).")
@click.pass_obj
@guarded
def init(state: State, directory: str, name: str | None) -> int:
    """Scaffold a spec, a local profile, sample data and a .gitignore in DIRECTORY (it may hold
    other files; init refuses only to overwrite one)."""
    from mlcompile.scaffold import scaffold

    for path in scaffold(Path(directory), name):
        state.info(f"wrote {path}")
    state.info(f"next: mlcompile validate {Path(directory) / 'mlcompile.yaml'}")
    return EXIT_OK
