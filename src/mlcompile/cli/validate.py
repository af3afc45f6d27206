"""`mlcompile validate`: the command editors and pre-commit run on every save, so it imports
nothing (not even pydantic) before it knows a spec needs more than the quick check."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from mlcompile.cli.common import (
    EXIT_OK,
    EXIT_USER_ERROR,
    State,
    guarded,
    policy_severity,
    report_diagnostics,
    set_diagnostics_format,
    target_option,
    verbosity_options,
    warn_only_option,
)


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
            compilation = compile_system(spec, profile_set, render=False, policy_severity=policy_severity(warn_only))
        except SpecError as exc:
            diagnostics += exc.diagnostics
            continue
        diagnostics += compilation.warnings
        if any(d.severity == "error" for d in diagnostics):
            continue
        names = ", ".join(p.name for p in compilation.profiles)
        valid_lines.append(f"{spec}: valid" + (f" for {names}" if names else NO_PROFILES))
    return diagnostics, valid_lines


@click.command()
@verbosity_options
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="SPEC...")
@target_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    callback=set_diagnostics_format,
    help="github: errors as GitHub Actions annotations on the file and line.",
)
@warn_only_option
@click.pass_obj
@guarded
def validate(state: State, specs: tuple[str, ...], targets: tuple[str, ...], output_format: str, warn_only: bool) -> int:
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
    report_diagnostics(diagnostics, state)
    for line in valid_lines:
        state.info(line)
    return EXIT_OK
