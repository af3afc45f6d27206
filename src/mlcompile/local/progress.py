"""Progress while a run executes (rich on a terminal, one line per event otherwise) and the
text summary after it."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from mlcompile.local.executor import PipelineRun, Reporter, StepRun

ICONS = {"succeeded": "✓", "failed": "✗", "skipped": "–", "cached": "↺", "running": "…"}


def _line(step: StepRun) -> str:
    extra = f" ({step.reason})" if step.reason else ""
    timing = f" {step.seconds:5.1f}s" if step.status in ("succeeded", "failed") else "       "
    return f"  {ICONS.get(step.status, ' ')} {step.name:<20}{timing}  {step.status}{extra}"


class PlainReporter(Reporter):
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr

    def pipeline_started(self, run: PipelineRun) -> None:
        print(f"{run.label}: {run.name} ({run.reason})", file=self.stream, flush=True)

    def step_finished(self, run: PipelineRun, step: StepRun) -> None:
        print(_line(step), file=self.stream, flush=True)
        if step.status == "failed" and step.log_tail:
            print(f"    log: {step.log}", file=self.stream)
            for line in step.log_tail:
                print(f"    | {line}", file=self.stream)
            self.stream.flush()


class RichReporter(Reporter):
    """A live table of the current pipeline's steps with spinners for the running ones."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=8, transient=True)
        self.run: PipelineRun | None = None
        self.live.start()

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        if self.run is None:
            return table
        for step in self.run.steps:
            icon: Any = Spinner("dots") if step.status == "running" else ICONS.get(step.status, "·")
            table.add_row(icon, step.name, step.status, f"{step.seconds:.1f}s" if step.seconds else "", step.reason or "")
        return table

    def pipeline_started(self, run: PipelineRun) -> None:
        self.run = run
        self.console.print(f"[bold]{run.label}[/]: {run.name} [dim]({run.reason})[/]")
        self.live.update(self._render())

    def step_started(self, run: PipelineRun, step: StepRun) -> None:
        self.live.update(self._render())

    def step_finished(self, run: PipelineRun, step: StepRun) -> None:
        self.live.console.print(_line(step), highlight=False, markup=False)
        if step.status == "failed" and step.log_tail:
            self.live.console.print(f"    log: {step.log}", markup=False)
            for line in step.log_tail:
                self.live.console.print(f"    | {line}", markup=False, highlight=False)
        self.live.update(self._render())

    def close(self) -> None:
        self.live.stop()


def reporter_for(verbosity: int, output_format: str) -> Reporter:
    if verbosity < 0:
        return Reporter()
    if sys.stderr.isatty():
        try:
            return RichReporter()
        except ImportError:
            pass
    return PlainReporter()


def render_summary(summary: dict[str, Any]) -> str:
    out = [f"{summary['system']}: run {summary['run_id']} {summary['status']} in {summary['duration_seconds']:.1f}s"]
    training = summary.get("training")
    if training:
        metrics = training.get("metrics") or {}
        if metrics:
            out.append("metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        gates = training.get("gates")
        if gates:
            out.append(f"gates: {'passed' if gates['passed'] else 'FAILED'} (" + ", ".join(
                f"{g['metric']} {g['comparison']} {g['threshold']:g}: {'ok' if g['passed'] else 'fail'}" for g in gates["results"]) + ")")  # fmt: skip
        model = training.get("model")
        out.append(
            f"registered: {model['model']} version {model['version']} (aliases: {', '.join(model.get('aliases', [])) or '-'})"
            if model
            else "registered: nothing"
        )
    batch = summary.get("batch")
    if batch and "rows" in batch:
        out.append(f"batch: {batch['rows']} rows scored with version {batch['version']} → {', '.join(batch.get('output') or []) or 'artifact only'}")
    drift = summary.get("drift")
    if drift:
        drifted = drift.get("drifted") or []
        out.append(
            f"drift ({drift['method']}, threshold {drift['threshold']:g}): "
            + (f"BREACH in {', '.join(drifted)}" if drifted else "none")
            + f"; report: {drift.get('report')}"
        )
    performance = summary.get("performance")
    if performance:
        if performance.get("value") is None:
            out.append(f"performance: {performance['metric']} not computed ({performance.get('note', '')})")
        else:
            out.append(
                f"performance: {performance['metric']} {performance['value']:.4f} (min {performance['min']:g})" + (" BREACH" if performance["breach"] else "")
            )
    retraining = summary.get("retraining")
    if retraining and retraining.get("triggered"):
        model = retraining.get("model")
        if model and model.get("existing"):
            outcome = f"rebuilt the same model as version {model['version']} (not registered again)"
        elif model:
            outcome = f"registered version {model['version']}"
        else:
            outcome = f"registered nothing (status {retraining.get('status')})"
        out.append(f"retraining: triggered ({'; '.join(retraining.get('reasons') or []) or 'breach'}); {outcome}")
    failed = summary.get("failed_step")
    if failed:
        out.append(f"failed: {failed['pipeline']}/{failed['step']} ({failed['reason']}); log: {failed['log']}")
    if summary.get("not_applied"):
        out.append(f"not applied on this machine: {len(summary['not_applied'])} schedules/triggers (each pipeline ran once; see --format json)")
    out.append(f"report: {summary.get('report')}")
    out.append(f"runs and logs: {summary['run_dir']}")
    return "\n".join(out)
