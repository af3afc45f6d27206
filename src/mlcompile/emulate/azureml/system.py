"""`mlcompile run SPEC --target PROFILE --emulate` for an Azure ML profile: the build's files
(pipelines/*.yml, components/, endpoints/, schedules/) run on this machine as Azure ML would
run them, against the workspace stand-in (services.py):

1. `mlcompile deploy`, as a person runs it before the schedules start (lifecycle.deploy);
2. the training pipeline (the retraining schedule's job), `runs` times; under manual
   approval each new version is approved and the `<system>-deploy` job rolls it out;
3. batch scoring, then monitoring (their schedules' jobs), when a version is approved;
4. what monitoring submitted through MLClient (retraining) runs to its end;

then the same JSON summary as every emulated platform (emulate/summary.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.emulate.azureml import jobs as pipeline_jobs
from mlcompile.emulate.azureml import lifecycle
from mlcompile.emulate.azureml.steps import JobContext
from mlcompile.emulate.containers import Images
from mlcompile.emulate.ir import PipelineError, PipelineResult
from mlcompile.emulate.system import PARALLELISM, SUBMITTED_RUN_SECONDS, Session, _emulated_run, run_scheduled, stage_fixtures
from mlcompile.errors import UsageError


@dataclass
class AzureSession(Session):
    services: Any = None  # services.AzureServices, once started

    def pipeline_file(self, kind: str) -> Path | None:
        path = self.build / "pipelines" / f"{self.system}-{kind}.yml"
        return path if path.is_file() else None

    def job_context(self) -> JobContext:
        return JobContext(self.images, self.root, self.work / "runs", self.services.workspace, dict(self.context().env))

    def run_job(self, job: dict[str, Any], name: str | None = None) -> PipelineResult:
        label = job.get("display_name") or name or "pipeline"
        self.log(f"pipeline {label}: running" + (f" (job {name})" if name else ""))
        result = pipeline_jobs.run_job(job, self.job_context(), name=name, parallelism=PARALLELISM)
        self.results.append(result)
        for task in result.tasks.values():
            self.log(f"  {task.name}: {task.status.lower()}" + (f" ({task.reason})" if task.reason else ""))
        self.log(f"pipeline {label}: {result.status.lower()} in {result.seconds:.1f} s")
        return result

    def run_pipeline_file(self, path: Path, parameters: dict[str, Any] | None = None) -> PipelineResult:
        job = pipeline_jobs.load(path)
        given = {**self.config.parameters.get(str(job.get("display_name")), {}), **(parameters or {})}
        unknown = sorted(set(given) - set(job.get("inputs") or {}))
        if unknown:
            raise PipelineError(f"pipeline {job.get('display_name')} has no input {', '.join(unknown)}")
        job["inputs"] = {**(job.get("inputs") or {}), **given}
        return self.run_job(job)


def emulate_azureml(
    spec: str,
    compilation: Any,
    workdir: str | None,
    *,
    only: tuple[str, ...],
    isolation: str,
    runs: int,
    approve: bool,
    log: Callable[[str], None],
    started: float,
) -> dict[str, Any]:
    """An Azure ML build (the azureml platform's emulator): its own interpreter of pipeline
    jobs and workspace stand-in."""
    plan, kinds, spec_dir, config, first, later, work, images = _emulated_run(spec, compilation, workdir, only=only, isolation=isolation)
    return run(plan, spec_dir, work, images, config, kinds, first, later, runs=runs, approve=approve, log=log, started=started)


def run(
    plan: Any, spec_dir: Path, work: Path, images: Images, config: Any, kinds: list[str], first: list[Any], later: dict[str, list[Any]],
    *, runs: int, approve: bool, log: Callable[[str], None], started: float,
) -> dict[str, Any]:  # fmt: skip
    """The emulated run of a built Azure ML profile (emulate.system.emulate prepared the
    workdir, the build, the fixtures and the images), summarised."""
    from mlcompile.emulate.azureml.services import serve
    from mlcompile.emulate.summary import summarize

    session = AzureSession(plan.system, plan.profile, plan.platform, plan, work / "build" / plan.profile, work / "storage", work, images, config, log=log)
    session.env["MLCOMPILE_SPEC_DIR"] = str(spec_dir)
    with contextlib.ExitStack() as stack:
        session.services = services = stack.enter_context(serve(session))
        stage_fixtures(session, first)
        try:
            for path in sorted((session.build / "pipelines").glob("*.yml")):
                pipeline_jobs.check_with_sdk(path)  # what `az ml job create` would refuse, refused before anything runs
        except PipelineError as exc:
            raise UsageError(str(exc)) from None
        lifecycle.deploy(session, services, "before the first scheduled run")
        run_scheduled(session, kinds, later, runs, approve, registry=lifecycle.Registry(session, services))
        services.wait(SUBMITTED_RUN_SECONDS)  # a job submitted through MLClient (retraining) ends before the summary
        lifecycle.observe_endpoint(session, services)
        summary = summarize(session)
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary
