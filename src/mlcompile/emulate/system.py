"""`mlcompile run SPEC --target PROFILE --emulate`: build the spec for a Kubeflow, Vertex AI,
SageMaker or Azure ML profile, then run the built pipelines on this machine the way the platform
would: training, then batch scoring, then monitoring, reading only the built files (pipelines/).
Each platform names its emulator (`Platform.emulator`): the KFP IR (Kubeflow, Vertex AI) is
interpreted here; SageMaker pipeline definitions in `emulate/sagemaker/`, Azure ML pipeline
jobs in `emulate/azureml/`.

Platform services plug in through `mlcompile.emulate.services.serve(session)` when that
module exists: a context manager that starts the API stand-ins (on 127.0.0.1) and adds to
`session.env` what points the steps at them (e.g. MLCOMPILE_VERTEX_API_ENDPOINT). The
emulator itself serves MLflow for a profile whose registry is MLflow."""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcompile.emulate.config import EmulationConfig, load_config
from mlcompile.emulate.containers import PARALLELISM, Images, first_line, plan_images, stop
from mlcompile.emulate.ir import EmulationContext, PipelineError, PipelineResult, load_documents, run_pipeline
from mlcompile.emulate.lifecycle import train_and_approve, unapproved_reason
from mlcompile.errors import UsageError
from mlcompile.runtime import emulated_storage as storage

# the pipelines a platform's schedules start, in the order a first day would see them
ORDER = ("training", "batch-scoring", "monitoring")
MLFLOW_START_SECONDS = 60.0
WORKDIR_MARKER = ".mlcompile-emulate"
SUBMITTED_RUN_SECONDS = 600.0  # how long the summary waits for runs submitted through the platform's API


@dataclass
class Session:
    """One emulated run: what the stand-ins need to know, and where they put things."""

    system: str
    profile: str
    platform: str
    plan: Any  # mlcompile.plan.nodes.Plan
    build: Path  # the built profile folder (manifest.json, pipelines/, ...)
    root: Path  # storage root (gcs/, bigquery/, ...)
    work: Path
    images: Images
    config: EmulationConfig
    env: dict[str, str] = field(default_factory=dict)  # added to every container's environment
    hosts: dict[str, str] = field(default_factory=dict)  # host:port in the build -> 127.0.0.1:port
    results: list[PipelineResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # pipeline not started -> why
    facts: dict[str, Any] = field(default_factory=dict)  # what stand-ins observed, for the summary
    # the platform API stand-ins (emulate.services): "vertex" (Vertex AI, its model registry)
    # or "kubernetes" (the Kubernetes API and KFP)
    stand_ins: str = "kubernetes"
    log: Callable[[str], None] = lambda message: None

    def pipeline_file(self, kind: str) -> Path | None:
        path = self.build / "pipelines" / f"{self.system}-{kind}.yaml"
        return path if path.is_file() else None

    def context(self) -> EmulationContext:
        env = dict(self.env)
        if self.hosts:
            env[storage.HOSTS_ENV] = json.dumps(self.hosts, sort_keys=True)
        namespace = str(self.plan.platform_settings.get("namespace") or "default")
        return EmulationContext(self.images, self.root, self.work / "runs", env, self.config.secrets, namespace=namespace, parallelism=PARALLELISM)

    def run_pipeline_file(self, path: Path, parameters: dict[str, Any] | None = None) -> PipelineResult:
        """Run one built pipeline (also how a stand-in's runs API starts a submitted run)."""
        ir, platform = load_documents(path.read_text(encoding="utf-8"))
        name = ir.get("pipelineInfo", {}).get("name", path.stem)
        merged = {**self.config.parameters.get(name, {}), **(parameters or {})}
        self.log(f"pipeline {name}: running")
        result = run_pipeline(ir, parameters=merged, context=self.context(), platform=platform)
        self.results.append(result)
        for task in result.tasks.values():
            self.log(f"  {task.name}: {task.status.lower()}" + (f" ({task.reason})" if task.reason else ""))
        self.log(f"pipeline {name}: {result.status.lower()} in {result.seconds:.1f} s")
        return result


def emulate(
    spec: str,
    target: str,
    workdir: str | None,
    *,
    only: tuple[str, ...] = (),
    isolation: str = "fork",
    runs: int = 1,
    approve: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Build, run training, batch scoring and monitoring (or the pipelines `only` names: a
    kind such as `training`, or a pipeline's name), and summarise. `isolation` "subprocess"
    starts a fresh interpreter per runtime container; "fork" forks it warm. Training runs
    `runs` times; under manual approval each new version is approved and deployed through
    the platform's API (unless not `approve`: it stays pending, and batch scoring and
    monitoring are skipped for want of an approved version)."""
    from mlcompile.build import compile_system, select_profiles
    from mlcompile.targets.registry import platform_named

    started = time.monotonic()
    compilation = compile_system(spec, select_profiles(spec, [target], "run"), render=True, git_commit=None)
    plan = compilation.results[0].plan
    platform = platform_named(plan.platform)
    if platform is None or platform.emulator is None:
        raise UsageError(
            f"--emulate runs {_emulated_platforms()} builds; profile '{plan.profile}' is {plan.platform} (use `mlcompile run` without --emulate for local)"
        )
    module, _, function = platform.emulator.partition(":")
    emulator = getattr(importlib.import_module(module), function)  # the platform's (Platform.emulator)
    return emulator(spec, compilation, workdir, only=only, isolation=isolation, runs=runs, approve=approve, log=log, started=started)


def _emulated_platforms() -> str:
    from mlcompile.targets.registry import platform_named, target_names

    titles = [found.title for found in map(platform_named, target_names()) if found is not None and found.emulator is not None]
    return ", ".join(titles[:-1]) + f" and {titles[-1]}" if len(titles) > 1 else "".join(titles) or "no"


def _emulated_run(
    spec: str, compilation: Any, workdir: str | None, *, only: tuple[str, ...], isolation: str
) -> tuple[Any, list[str], Path, EmulationConfig, list[tuple[Any, Path]], dict[str, list[tuple[Any, Path]]], Path, Images]:
    """What every KFP IR and Azure ML emulation starts from: the build written to a fresh work
    folder, the pipelines to run, the fixtures, and the images that run the steps."""
    from mlcompile.build import write_builds

    compiled = compilation.results[0]
    plan = compiled.plan
    kinds, spec_dir, config, first, later = emulation_inputs(spec, compilation, only)
    work = _fresh_workdir(Path(workdir).resolve() if workdir else spec_dir / ".mlcompile" / "emulate" / plan.profile)
    # under --isolation fork, the fork server's imports (~10 s of CPU) overlap writing, fixtures and MLflow's start
    images = plan_images(plan, config.commands, config.workdirs, isolation)
    write_builds([compiled], work / "build")
    return plan, kinds, spec_dir, config, first, later, work, images


def emulate_kubeflow(spec: str, compilation: Any, workdir: str | None, **options: Any) -> dict[str, Any]:
    """A Kubeflow build: the KFP IR interpreted here, beside Kubernetes and KFP API stand-ins."""
    return _emulate_ir(spec, compilation, workdir, stand_ins="kubernetes", **options)


def emulate_vertex(spec: str, compilation: Any, workdir: str | None, **options: Any) -> dict[str, Any]:
    """A Vertex AI build: the KFP IR interpreted here, beside a Vertex AI API stand-in."""
    return _emulate_ir(spec, compilation, workdir, stand_ins="vertex", **options)


def _emulate_ir(spec: str, compilation: Any, workdir: str | None, *, stand_ins: str, only: tuple[str, ...], isolation: str, runs: int, approve: bool,
                log: Callable[[str], None], started: float) -> dict[str, Any]:  # fmt: skip
    from mlcompile.emulate.summary import summarize

    plan, kinds, spec_dir, config, first, later, work, images = _emulated_run(spec, compilation, workdir, only=only, isolation=isolation)
    session = Session(
        plan.system, plan.profile, plan.platform, plan, work / "build" / plan.profile, work / "storage", work, images, config, log=log, stand_ins=stand_ins
    )
    session.env["MLCOMPILE_SPEC_DIR"] = str(spec_dir)
    with contextlib.ExitStack() as stack:
        mlflow_ready = stack.enter_context(_mlflow(session))
        stage_fixtures(session, first)
        mlflow_ready()
        services = stack.enter_context(_platform_services(session))
        run_scheduled(session, kinds, later, runs, approve)
        if services is not None:  # a run submitted through the platform's API (retraining) ends before the summary
            services.wait(SUBMITTED_RUN_SECONDS)
        summary = summarize(session)
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def emulation_inputs(
    spec: str, compilation: Any, only: tuple[str, ...]
) -> tuple[list[str], Path, EmulationConfig, list[tuple[Any, Path]], dict[str, list[tuple[Any, Path]]]]:
    """The pipeline kinds to run (`--only`), the spec's folder, its emulation config, the
    fixtures staged first, and those restaged before a later pipeline; checked before anything runs."""
    plan = compilation.results[0].plan
    kinds = [kind for kind in ORDER if not only or kind in only or f"{plan.system}-{kind}" in only]
    unknown = sorted(set(only) - set(ORDER) - {f"{plan.system}-{kind}" for kind in ORDER})
    if unknown:
        raise UsageError(f"--only {', '.join(unknown)}: with --emulate, name pipelines: {', '.join(ORDER)}")
    spec_dir = Path(spec).resolve().parent
    config = load_config(spec_dir)
    first = fixtures_for(plan, compilation.bundle, spec_dir, config.fixtures)
    later = {kind: fixtures_for(plan, compilation.bundle, spec_dir, config.restage[kind], fallback=False) for kind in kinds if kind in config.restage}
    return kinds, spec_dir, config, first, later


def run_scheduled(session: Session, kinds: list[str], later: dict[str, list[Any]], runs: int, approve: bool, registry: Any = None) -> None:
    """The pipelines of `kinds` as their schedules start them: training `runs` times (each new
    version approved and deployed, see lifecycle.train_and_approve), then the others when a
    version is approved. `registry`: the platform's (default: lifecycle.Registry)."""
    for kind in kinds:
        path = session.pipeline_file(kind)
        if kind != "training":  # training's are for its later runs
            stage_fixtures(session, later.get(kind, []))
        if path is None:
            continue
        try:
            if kind == "training":
                train_and_approve(session, path, runs, approve, rerun=lambda: stage_fixtures(session, later.get("training", [])), registry=registry)
            elif (reason := unapproved_reason(session, registry)) is not None:
                session.skipped[f"{session.system}-{kind}"] = reason
                session.log(f"pipeline {session.system}-{kind}: skipped ({reason})")
            else:
                session.run_pipeline_file(path)
        except PipelineError as exc:
            raise UsageError(f"{path}: {exc}") from None


def _fresh_workdir(work: Path) -> Path:
    """Every emulated run starts from empty buckets and an empty registry: the previous
    run's folder is removed, and only a folder an emulated run made (its marker file)."""
    if work.exists() and any(work.iterdir()) and not (work / WORKDIR_MARKER).is_file():
        raise UsageError(f"--workdir {work} holds other files: name a new or empty folder (an emulated run empties its workdir)")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / WORKDIR_MARKER).write_text("an emulated run's folder: `mlcompile run --emulate` empties it on the next run\n")
    return work


def fixtures_for(plan: Any, bundle: Any, spec_dir: Path, fixtures: dict[str, Path], *, fallback: bool = True) -> list[tuple[Any, Path]]:
    """Each cloud source and the local file that stands for it (by URI, then by name; with
    `fallback`, a source with none takes the spec's own local file). Checked before anything runs."""
    local = {source.name: source.uri for source in bundle.base.system.features.sources} if bundle is not None else {}
    found = []
    for source in plan.features.sources:
        if not storage.is_cloud(source.uri):
            continue
        fixture = fixtures.get(source.uri) or fixtures.get(source.name)
        if fixture is None and not fallback:
            continue
        if fixture is None and local.get(source.name, "").startswith("file://"):
            fixture = spec_dir / local[source.name][len("file://") :]
        if fixture is None:
            raise UsageError(f"source '{source.name}' ({source.uri}) has no fixture: name a local file for it under `fixtures:` in emulate.yaml")
        if not fixture.exists():
            raise UsageError(f"fixture {fixture} for source '{source.name}' does not exist")
        found.append((source, fixture))
    return found


def stage_fixtures(session: Session, fixtures: list[tuple[Any, Path]]) -> None:
    """Put each fixture where its source's URI is emulated, converted as the source's format
    asks: a csv fixture becomes parquet for a parquet or BigQuery source."""
    for source, fixture in fixtures:
        destination = storage.local_path(source.uri, session.root)
        if destination.is_dir():
            shutil.rmtree(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.format in ("parquet", "table") and fixture.suffix.lower() in (".csv", ".gz"):
            import pandas as pd

            pd.read_csv(fixture, low_memory=False).to_parquet(destination, index=False)
        elif fixture.is_dir():
            shutil.copytree(fixture, destination)
        else:
            shutil.copyfile(fixture, destination)
        session.log(f"fixture {fixture.name} -> {source.uri}")


@contextlib.contextmanager
def _mlflow(session: Session) -> Iterator[Callable[[], None]]:
    """MLflow's server for a profile whose registry is an MLflow URI (kubeflow's in-cluster
    one): the steps reach it through the host mapping (storage.HOSTS_ENV). Yields the wait
    for it to listen, so that its start overlaps other work."""
    registry = session.plan.platform_settings.get("registry") or {}
    uri = registry.get("uri") if registry.get("kind") == "mlflow" else None
    if not uri:
        yield lambda: None
        return
    folder = session.work / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "server.log", "w+b")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcompile.emulate.mlflow_server", str(folder)], stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
    )

    def ready() -> None:
        line = first_line(process, MLFLOW_START_SECONDS)
        if not line.startswith("port "):
            log.seek(0)
            raise UsageError(f"the MLflow stand-in did not start: {log.read().decode(errors='replace')[-2000:]}")
        local = f"127.0.0.1:{line.split()[1]}"
        session.hosts[storage.netloc(uri)] = local
        session.facts["mlflow"] = {"uri": uri, "local": f"http://{local}"}
        session.log(f"mlflow stand-in for {uri} at http://{local}")

    try:
        yield ready
    finally:
        stop(process)
        log.close()


@contextlib.contextmanager
def _platform_services(session: Session) -> Iterator[Any]:
    """The platform API stand-ins (mlcompile.emulate.services.Services), or None without them."""
    import importlib

    try:
        services = importlib.import_module("mlcompile.emulate.services")
    except ModuleNotFoundError as exc:
        if exc.name != "mlcompile.emulate.services":
            raise  # the stand-ins are there but need something missing: say so
        yield None
        return
    with services.serve(session) as served:
        yield served
