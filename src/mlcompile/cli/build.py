"""`mlcompile build`: compile specs for profiles and write each build atomically."""

from __future__ import annotations

from pathlib import Path

import click

from mlcompile.cli.common import (
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
@click.option(
    "--out",
    "-o",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder; one subfolder per profile (per system and profile for several specs).",
)
@click.option(
    "--git-commit",
    default="auto",
    show_default=True,
    metavar="auto|none|SHA",
    help="Commit recorded as lineage on every resource: asked from git, left out, or given.",
)
@warn_only_option
@diagnostics_option
@cache_dir_option
@click.pass_obj
@guarded
def build(state: State, specs: tuple[str, ...], targets: tuple[str, ...], out_dir: str, git_commit: str, warn_only: bool, cache_dir: str | None) -> int:
    """Compile each SPEC for each --target profile into OUT/<profile>/ with a manifest.json.

    With several SPECs (or a quoted glob such as 'systems/*/mlcompile.yaml') each system goes
    to OUT/<system name>/<profile>/; all specs are checked before anything is written."""
    from mlcompile.build import compile_systems, expand_spec_patterns, refuse_credential_leaks, select_profiles, write_builds
    from mlcompile.build_output import output_errors, refuse_foreign_folders, safe_folder_name
    from mlcompile.errors import UsageError

    paths, patterned = expand_spec_patterns(specs)
    profiles = select_profiles(paths[0], targets, "build")
    if not targets and len({str(Path(p).parent.resolve()) for p in paths}) > 1:
        raise UsageError("several specs in different folders build for the same profiles: pass them with --target")
    compilations = compile_systems(
        paths,
        profiles,
        render=True,
        git_commit=None if git_commit == "none" else git_commit,
        policy_severity=policy_severity(warn_only),
        cache_dir=cache_dir,
    )
    nested = len(paths) > 1 or patterned
    if nested:
        names: dict[str, str] = {}
        for spec, compilation in zip(paths, compilations):
            name = compilation.system
            if name in names:
                raise UsageError(f"{names[name]} and {spec} both define system '{name}': their builds would share {out_dir}/{name}/")
            names[name] = spec
    for compilation in compilations:
        report_diagnostics(compilation.warnings, state)
    folders = [Path(out_dir) / safe_folder_name(c.system, "system") if nested else Path(out_dir) for c in compilations]
    for compilation, folder_of in zip(compilations, folders):  # every system, before anything is written
        refuse_credential_leaks(compilation.results, folder_of)
        with output_errors(folder_of):
            refuse_foreign_folders([result.profile.name for result in compilation.results], folder_of)
    for compilation, folder_of in zip(compilations, folders):
        for folder, result in zip(write_builds(compilation.results, folder_of, on_wait=state.info), compilation.results):
            state.info(f"built {result.profile.name} ({result.profile.target.platform}): {folder}/ ({len(result.files)} files + manifest.json)")
    return EXIT_OK
