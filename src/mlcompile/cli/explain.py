"""Commands that describe what a spec becomes: `explain` in words, `graph` as a diagram."""

from __future__ import annotations

import click

from mlcompile.cli.common import EXIT_OK, State, guarded, printable, profile_option, report_diagnostics, spec_argument, verbosity_options


@click.command()
@verbosity_options
@spec_argument
@profile_option("Profile to plan for (default: the local profile in targets/ beside the spec, else this machine).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["mermaid", "markdown", "dot"]),
    default="mermaid",
    show_default=True,
    help="mermaid: the bare flowchart; markdown: the flowchart in a ```mermaid fence, ready to paste into a PR; dot: Graphviz.",
)
@click.pass_obj
@guarded
def graph(state: State, spec: str, target: str | None, output_format: str) -> int:
    """Print the plan's DAGs (training, batch scoring, monitoring) as Mermaid or Graphviz dot."""
    from mlcompile.build import compile_system, select_profiles
    from mlcompile.graph import to_dot, to_markdown, to_mermaid

    compilation = compile_system(spec, select_profiles(spec, (target,) if target else (), "graph"), render=False)
    report_diagnostics(compilation.warnings, state)
    plan = compilation.results[0].plan
    render = {"mermaid": to_mermaid, "markdown": to_markdown, "dot": to_dot}[output_format]
    click.echo(printable(render(plan)), nl=False)
    return EXIT_OK


@click.command()
@verbosity_options
@spec_argument
@profile_option("Profile to explain (default: the one profile in targets/ beside the spec).")
@click.option("--files/--no-files", default=True, show_default=True, help="Also list the kinds of file the target writes (renders the build).")
@click.pass_obj
@guarded
def explain(state: State, spec: str, target: str, files: bool) -> int:
    """Say in words what SPEC becomes on PROFILE's platform: pipelines and their steps with
    machines, GPUs, replicas and timeouts; the endpoint; schedules, triggers, monitors, registry."""
    from mlcompile.build import compile_system, select_profiles
    from mlcompile.explain import explain_plan

    compilation = compile_system(spec, select_profiles(spec, (target,) if target else (), "explain"), render=files, git_commit=None)
    report_diagnostics(compilation.warnings, state)
    (result,) = compilation.results
    click.echo(printable(explain_plan(result.plan, result.files if files else None)), nl=False)
    return EXIT_OK
