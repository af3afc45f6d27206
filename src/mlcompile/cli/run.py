"""Commands that run a system on this machine: `run` (or `run --emulate` a platform) and
`serve` (predictions over HTTP)."""

from __future__ import annotations

import json

import click

from mlcompile.cli.common import (
    EXIT_DIFF,
    EXIT_OK,
    State,
    guarded,
    policy_severity,
    profile_option,
    report_diagnostics,
    spec_argument,
    verbosity_options,
    warn_only_option,
)


@click.command()
@verbosity_options
@spec_argument
@profile_option("A platform: local profile (default: the local profile in targets/ beside the spec, else this machine, workdir .mlcompile).")
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
@click.option(
    "--isolation",
    type=click.Choice(["fork", "subprocess"]),
    default="fork",
    show_default=True,
    help="fork: steps fork from a warm server; subprocess: each step is a fresh `python -m mlcompile.runtime`.",
)
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
@guarded
def run(
    state: State,
    spec: str,
    target: str | None,
    only: tuple[str, ...],
    resume: bool,
    output_format: str,
    workdir: str | None,
    isolation: str,
    no_retrain: bool,
    emulate: bool,
    runs: int,
    no_approve: bool,
    warn_only: bool,
) -> int:
    """Run SPEC on this machine: training, batch scoring, monitoring (and retraining on a breach)."""
    if emulate:
        return _run_emulated(state, spec, target, workdir, output_format, isolation, only, runs=runs, approve=not no_approve)
    from mlcompile.local.progress import render_summary, reporter_for
    from mlcompile.local.run import execute, prepare

    prepared = prepare(spec, target, workdir, policy_severity=policy_severity(warn_only), command="run")
    report_diagnostics(prepared.warnings, state)
    summary = execute(prepared, only=only, resume=resume, mode=isolation, reporter=reporter_for(state.verbosity, output_format), retrain=not no_retrain)
    if output_format == "json":
        click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
    elif state.verbosity >= 0 or summary["status"] != "succeeded":
        click.echo(render_summary(summary))
    return EXIT_DIFF if summary["status"] == "failed" else EXIT_OK


def _run_emulated(
    state: State, spec: str, target: str | None, workdir: str | None, output_format: str, isolation: str, only: tuple[str, ...], *, runs: int, approve: bool
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


@click.command()
@verbosity_options
@spec_argument
@profile_option("A platform: local profile (default: the local profile in targets/ beside the spec, else this machine).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--version", "model_version", default=None, help="Serve this model version (default: alias production, else the newest).")
@click.option("--workdir", type=click.Path(file_okay=False), help="Override the profile's local.workdir.")
@click.pass_obj
@guarded
def serve(state: State, spec: str, target: str | None, host: str, port: int, model_version: str | None, workdir: str | None) -> int:
    """Answer predictions over HTTP for SPEC's registered model (POST /predict)."""
    from mlcompile.local.run import prepare
    from mlcompile.local.serve import serve_forever

    prepared = prepare(spec, target, workdir, command="serve")
    report_diagnostics(prepared.warnings, state)
    serve_forever(prepared, host=host, port=port, version=model_version, log=state.info)
    return EXIT_OK
