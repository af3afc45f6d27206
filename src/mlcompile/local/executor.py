"""Runs a plan's pipelines on this machine: each step in its own process, in dependency
order (independent steps side by side), logs per step under the workdir, `run_if` honoured,
a failed step stops its dependents, `--resume` skips steps whose inputs and code are unchanged.

Workdir layout (the profile's `local.workdir`, relative to the spec's folder):
    mlflow.db                 MLflow tracking + model registry (SQLite)
    mlartifacts/              MLflow artifact store
    runs/<run id>/<pipeline>/<step>/   the step's outputs, log.txt, result.json
    runs/<run id>/summary.json
    state/<pipeline>/<step>.json       newest successful outputs + content fingerprint (resume, --only)
    feature_repo/             the system's Feast repository (as `mlcompile build` renders it for
                              the local target); data/ in it: the staged sources, the registry
                              and the SQLite online store that `mlcompile serve` reads
    alerts.jsonl, triggers.jsonl       what the alert / trigger-retraining steps recorded
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlcompile.errors import UsageError
from mlcompile.local.workers import THREAD_VARIABLES, StepProcess, warm_up
from mlcompile.plan.nodes import Pipeline, Plan, Step
from mlcompile.plan.step_config import step_config
from mlcompile.runtime import PRELOAD, PRELOAD_WITH_FEAST
from mlcompile.runtime.io import fingerprint, write_bytes
from mlcompile.targets.local import MATERIALIZE_STEP

EXTENSIONS = {"dataset": ".parquet", "model": "", "metrics": ".json", "report": ".json", "decision": ".json"}
# the registry state a step's result depends on (part of its fingerprint): the champion for
# evaluate, the serving version (production, else newest) for scoring and monitoring
READS_PRODUCTION = frozenset({"evaluate"})
READS_SERVING = frozenset({"score_batch", "check_drift", "check_performance"})
READS_SOURCES = frozenset({"extract_features", "score_batch", "check_drift", "check_performance", "materialize_features"})
# steps that use the Feast repository when the run has one (config `feast.repo`)
USES_FEAST = frozenset({"extract_features", "materialize_features"})
FEAST_REPO = "feature_repo"
LOG_TAIL = 25
POLL_SECONDS = 0.01


@dataclass
class StepRun:
    pipeline: str
    name: str
    kind: str
    status: str = "pending"  # pending running succeeded failed skipped cached
    seconds: float = 0.0
    reason: str | None = None
    log: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    log_tail: list[str] | None = None
    argv: list[str] | None = None  # what the step process ran (after `python -m mlcompile.runtime`)
    env: dict[str, str] | None = None  # what the executor added to its environment

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "status": self.status, "duration_seconds": round(self.seconds, 3)}
        for key in ("reason", "log"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.outputs:
            data["outputs"] = self.outputs
        if self.log_tail:
            data["log_tail"] = self.log_tail
        return data


@dataclass
class PipelineRun:
    label: str  # training | batch | monitoring | retraining
    name: str
    reason: str
    steps: list[StepRun]
    status: str = "pending"
    seconds: float = 0.0

    def step(self, name: str) -> StepRun | None:
        return next((s for s in self.steps if s.name == name), None)


class Reporter:
    """Progress callbacks; the CLI supplies a rich or plain one."""

    def pipeline_started(self, run: PipelineRun) -> None: ...
    def step_started(self, run: PipelineRun, step: StepRun) -> None: ...
    def step_finished(self, run: PipelineRun, step: StepRun) -> None: ...
    def pipeline_finished(self, run: PipelineRun) -> None: ...
    def close(self) -> None: ...


def runtime_code_hash() -> str:
    """The runtime's own code and the versions of the libraries that shape its outputs."""
    import importlib.metadata as metadata

    import mlcompile.runtime as runtime

    digest = hashlib.sha256()
    for path in sorted(Path(runtime.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    for dist in ("scikit-learn", "pandas", "numpy", "mlflow", "optuna", "scipy"):
        try:
            digest.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()


class Executor:
    def __init__(
        self,
        plan: Plan,
        spec_dir: Path,
        workdir: Path,
        *,
        resume: bool = False,
        only: Sequence[str] = (),
        mode: str = "fork",
        parallel: int | None = None,
        reporter: Reporter | None = None,
        lineage: dict[str, Any] | None = None,
        retrain: bool = True,
    ):
        self.plan = plan
        self.spec_dir = spec_dir.resolve()
        self.workdir = workdir.resolve()
        self.resume = resume
        self.mode = mode
        self.parallel = max(1, parallel or min(4, os.cpu_count() or 2))
        self.reporter = reporter or Reporter()
        self.lineage = lineage or {}
        self.retrain = retrain
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-{os.getpid() % 10000:04d}"
        self.run_dir = self.workdir / "runs" / self.run_id
        # Steps side by side share the cores: each gets its share of threads (OpenMP/BLAS
        # oversubscription makes a small fit 10-50x slower on a busy machine); a forked step
        # applies it with threadpoolctl, since its libraries were loaded by the fork server.
        self.threads = str(max(1, (os.cpu_count() or 1) // self.parallel))
        self.feast_repo = self.workdir / FEAST_REPO if feast_available() else None
        self.training = plan.training if self.feast_repo is not None else without_materialization(plan.training)
        self.only = self._select(only)
        self._code_hash: str | None = None
        self.pipelines: list[PipelineRun] = []
        self.startup_seconds = 0.0
        self.seconds = 0.0

    # ------------------------------------------------------------------ selection
    def _labelled(self) -> list[tuple[str, Pipeline]]:
        found = [("training", self.training)]
        if self.plan.batch is not None:
            found.append(("batch", self.plan.batch))
        if self.plan.monitoring_pipeline is not None:
            found.append(("monitoring", self.plan.monitoring_pipeline))
        return found

    def _select(self, only: Sequence[str]) -> set[tuple[str, str]] | None:
        if not only:
            return None
        chosen: set[tuple[str, str]] = set()
        labelled = self._labelled()
        for item in only:
            matched = False
            for label, pipeline in labelled:
                if item in (label, pipeline.name):
                    chosen |= {(pipeline.name, s.name) for s in pipeline.steps}
                    matched = True
                for step in pipeline.steps:
                    if item in (step.name, step.kind):
                        chosen.add((pipeline.name, step.name))
                        matched = True
            if not matched:
                names = sorted({label for label, _ in labelled} | {s.name for _, p in labelled for s in p.steps})
                raise UsageError(f"--only {item}: no such step or pipeline; choose from {', '.join(names)}")
        return chosen

    # ------------------------------------------------------------------ environment
    @property
    def tracking_uri(self) -> str:
        return "sqlite:///" + str(self.workdir / "mlflow.db")

    def env(self, label: str) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_REGISTRY_URI": self.tracking_uri,
            "MLCOMPILE_ARTIFACT_ROOT": str(self.workdir / "mlartifacts"),
            "MLCOMPILE_SPEC_DIR": str(self.spec_dir),
            "MLCOMPILE_WORKDIR": str(self.workdir),
            "MLCOMPILE_PIPELINE_RUN": f"{self.run_id}-{label}",
            "MLCOMPILE_TRY_UNAPPROVED": "1",  # a try-out on this machine scores the newest version before any approval (said so)
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "DO_NOT_TRACK": "true",
            "GIT_PYTHON_REFRESH": "quiet",
            "PYTHONUNBUFFERED": "1",
            **{variable: os.environ.get(variable, self.threads) for variable in THREAD_VARIABLES},
        }

    def registry_state(self) -> dict[str, Any]:
        """Versions and aliases of the registry (read straight from SQLite: cheap, and part of
        the fingerprint of every step whose result depends on the production model)."""
        path = self.workdir / "mlflow.db"
        if not path.exists():
            return {}
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                versions = db.execute("SELECT name, MAX(CAST(version AS INTEGER)) FROM model_versions GROUP BY name").fetchall()
                aliases = db.execute("SELECT name, alias, version FROM registered_model_aliases").fetchall()
        except sqlite3.Error:
            return {}
        return {"latest": sorted(map(list, versions)), "aliases": sorted(map(list, aliases))}

    def has_model(self) -> bool:
        return any(name == self.plan.registry.model for name, _ in self.registry_state().get("latest", []))

    # ------------------------------------------------------------------ state (resume, --only)
    def _state_path(self, pipeline: Pipeline, step: Step) -> Path:
        return self.workdir / "state" / pipeline.name / f"{step.name}.json"

    def _load_state(self, pipeline: Pipeline, step: Step) -> dict[str, Any] | None:
        """The step's last success, or None ("not done") when there is none or it cannot be
        read: a state file cut short by a crash or a full disk only costs a rerun of the step."""
        try:
            state = json.loads(self._state_path(pipeline, step).read_bytes())
        except (OSError, ValueError):  # missing, unreadable, truncated or not UTF-8/JSON
            return None
        outputs = state.get("outputs") if isinstance(state, dict) else None
        if not isinstance(outputs, dict) or not all(isinstance(p, str) and Path(p).exists() for p in outputs.values()):
            return None
        return state

    def _fingerprint(self, step: Step, config: dict[str, Any], inputs: dict[str, str]) -> str:
        if self._code_hash is None:
            self._code_hash = runtime_code_hash()
        data: dict[str, Any] = {"config": config, "code": self._code_hash, "inputs": {k: fingerprint(v) for k, v in sorted(inputs.items())}}
        if step.kind in READS_SOURCES:
            data["sources"] = {s.name: fingerprint(s.uri, str(self.spec_dir)) for s in self.plan.features.sources}
        if step.kind in READS_PRODUCTION | READS_SERVING:
            state = self.registry_state()
            model = self.plan.registry.model
            data["registry"] = {
                "production": [a for a in state.get("aliases", []) if a[0] == model and a[1] == "production"],
                **({"latest": [v for v in state.get("latest", []) if v[0] == model]} if step.kind in READS_SERVING else {}),
            }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

    # ------------------------------------------------------------------ running
    @property
    def preload(self) -> tuple[str, ...]:
        """What the fork server imports: Feast too when the steps open its repository."""
        return PRELOAD_WITH_FEAST if self.feast_repo is not None else PRELOAD

    def config(self, step: Step) -> dict[str, Any]:
        config = step_config(self.plan, step)
        if step.kind == "register":
            config["lineage"] = self.lineage
        if step.kind in USES_FEAST and self.feast_repo is not None:
            config["feast"] = {"repo": str(self.feast_repo)}
        if step.uses_user_container:
            config["container"] = {"image": step.image, "command": list(step.command), "args": list(step.args)}
        return config

    def run(self) -> list[PipelineRun]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        try:
            if self.feast_repo is not None:
                write_feast_repo(self.plan, self.feast_repo)
            if self.mode == "fork":  # once per run: the fork server imports the data stack (~1-3 s)
                warm_up(self.preload)
            self.startup_seconds = time.perf_counter() - started
            for label, pipeline in self._labelled():
                if self.only is not None and not any(p == pipeline.name for p, _ in self.only):
                    continue
                if label != "training" and not self.has_model():
                    reason = f"no registered version of {self.plan.registry.model} yet"
                    self.pipelines.append(PipelineRun(label, pipeline.name, reason, [], status="skipped"))
                    continue
                run = self.run_pipeline(label, pipeline, "scheduled" if label != "training" else "requested")
                if run.status == "failed":
                    break
                trigger = run.step("trigger-retraining")
                if label == "monitoring" and trigger is not None and trigger.status == "succeeded" and self.retrain:
                    self.run_pipeline("retraining", self.training, "monitoring breach: trigger-retraining", every_step=True)
        finally:
            self.reporter.close()
        self.seconds = time.perf_counter() - started
        return self.pipelines

    def run_pipeline(self, label: str, pipeline: Pipeline, reason: str, *, every_step: bool = False) -> PipelineRun:
        selected = [s for s in pipeline.steps if every_step or self.only is None or (pipeline.name, s.name) in self.only]
        run = PipelineRun(label, pipeline.name, reason, [StepRun(label, s.name, s.kind) for s in selected], status="running")
        self.pipelines.append(run)
        self.reporter.pipeline_started(run)
        started = time.perf_counter()
        steps = {s.name: s for s in selected}
        runs = {r.name: r for r in run.steps}
        outputs: dict[str, dict[str, str]] = {}  # step → artifact → path, including earlier runs' (for --only)
        for step in pipeline.steps:
            if step.name not in steps:
                state = self._load_state(pipeline, step)
                if state is not None:
                    outputs[step.name] = state["outputs"]
        running: dict[str, tuple[StepProcess, Path, str | None]] = {}
        try:
            self._loop(run, pipeline, steps, runs, outputs, running)
        except BaseException:  # Ctrl-C or a bug here: no step outlives the run
            for process, _, _ in running.values():
                process.kill()
            raise
        run.seconds = time.perf_counter() - started
        run.status = "failed" if any(r.status == "failed" for r in run.steps) else "succeeded"
        self.reporter.pipeline_finished(run)
        return run

    def _loop(
        self,
        run: PipelineRun,
        pipeline: Pipeline,
        steps: dict[str, Step],
        runs: dict[str, StepRun],
        outputs: dict[str, dict[str, str]],
        running: dict[str, Any],
    ) -> None:
        label = run.label
        env = self.env(label)
        while True:
            for name, r in runs.items():
                if r.status != "pending" or len(running) >= self.parallel:
                    continue
                step = steps[name]
                blocked = self._blocked(step, runs, outputs)
                if blocked is False:
                    continue  # dependencies still running
                if blocked:
                    r.status, r.reason = "skipped", blocked
                    self.reporter.step_finished(run, r)
                    continue
                started_step = self._start(label, pipeline, step, r, outputs, env)
                if started_step is not None:
                    running[name] = started_step
            for name, (process, step_dir, fp) in list(running.items()):
                r, step = runs[name], steps[name]
                code = process.poll()
                timeout = step.resources.timeout_seconds
                if code is None and timeout and time.perf_counter() - process.started > timeout:
                    process.kill()
                    code, r.reason = -9, f"timed out after {timeout}s"
                if code is None:
                    continue
                del running[name]
                self._finish(pipeline, step, r, code, process, step_dir, fp, outputs)
                self.reporter.step_finished(run, r)
            pending = [r for r in runs.values() if r.status == "pending"]
            if not running and pending and all(self._blocked(steps[r.name], runs, outputs) is False for r in pending):
                for r in pending:  # cannot happen in a DAG; never spin if it does
                    r.status, r.reason = "skipped", "its dependencies can never complete"
                    self.reporter.step_finished(run, r)
            if not running and not any(r.status == "pending" for r in runs.values()):
                break
            if running:
                time.sleep(POLL_SECONDS)

    def _blocked(self, step: Step, runs: dict[str, StepRun], outputs: dict[str, dict[str, str]]) -> str | Literal[False] | None:
        """None: ready. False: wait. A string: skip, for this reason."""
        needed = set(step.depends_on) | {ref.step for ref in step.inputs}
        for dep in sorted(needed):
            r = runs.get(dep)
            if r is None:  # not selected: its newest outputs must exist
                if dep not in outputs:
                    return f"needs the outputs of {dep}: run it first (without --only, or add it)"
                continue
            if r.status in ("pending", "running"):
                return False
            if r.status == "failed":
                return f"{dep} failed"
            if r.status == "skipped":
                return f"{dep} was skipped"
        if step.run_if:
            return self._run_if(step, outputs)
        return None

    def _run_if(self, step: Step, outputs: dict[str, dict[str, str]]) -> str | None:
        if step.run_if == "breach":
            decisions = [self._decision(outputs.get(dep, {})) for dep in step.depends_on]
            return None if any(decisions) else "no breach"
        decision = self._decision(outputs.get(step.run_if or "", {}))
        return None if decision else f"{step.run_if} decided no"

    @staticmethod
    def _decision(artifacts: dict[str, str]) -> bool:
        for path in artifacts.values():
            if path.endswith(".json") and Path(path).exists():
                data = json.loads(Path(path).read_text())
                if isinstance(data, dict) and "decision" in data:
                    return bool(data["decision"])
        return False

    def _start(
        self, label: str, pipeline: Pipeline, step: Step, r: StepRun, outputs: dict[str, dict[str, str]], env: dict[str, str]
    ) -> tuple[StepProcess, Path, str | None] | None:
        step_dir = self.run_dir / label / step.name
        step_dir.mkdir(parents=True, exist_ok=True)
        inputs = {ref.name: outputs[ref.step][ref.artifact] for ref in step.inputs}
        if step.run_if == "breach":  # alert / trigger-retraining say why
            for dep in step.depends_on:
                produced = list(outputs.get(dep, {}).values())
                if produced:  # the step's last output names its decision
                    inputs[dep] = produced[-1]
        outs = {a.name: str(step_dir / f"{a.name}{EXTENSIONS.get(a.type, '')}") for a in step.outputs}
        config = self.config(step)
        fp = self._fingerprint(step, config, inputs)
        if self.resume:
            state = self._load_state(pipeline, step)
            if state is not None and state.get("fingerprint") == fp:
                r.status, r.reason, r.result = "cached", f"unchanged since run {state.get('run_id')}", state.get("result")
                r.outputs = outputs[step.name] = state["outputs"]
                self.reporter.step_finished(self.pipelines[-1], r)
                return None
        argv = [step.name, "--config", json.dumps(config, sort_keys=True, separators=(",", ":"))]
        argv += [a for name in sorted(inputs) for a in ("--input", f"{name}={inputs[name]}")]
        argv += [a for name in sorted(outs) for a in ("--output", f"{name}={outs[name]}")]
        log = step_dir / "log.txt"
        r.log, r.outputs, r.status = str(log), outs, "running"
        step_env = {**env, "MLCOMPILE_STEP_RESULT": str(step_dir / "result.json")}
        r.argv, r.env = argv, step_env
        self.reporter.step_started(self.pipelines[-1], r)
        return StepProcess(argv, step_env, log, self.spec_dir, self.mode, self.preload), step_dir, fp

    def _finish(
        self, pipeline: Pipeline, step: Step, r: StepRun, code: int, process: StepProcess, step_dir: Path, fp: str | None, outputs: dict[str, dict[str, str]]
    ) -> None:
        r.seconds = time.perf_counter() - process.started
        result_path = step_dir / "result.json"
        if code == 0:
            r.status = "succeeded"
            r.result = json.loads(result_path.read_text()).get("result") if result_path.exists() else None
            outputs[step.name] = r.outputs
            state = {"fingerprint": fp, "outputs": r.outputs, "result": r.result, "run_id": self.run_id}
            # atomically (a temporary file renamed over the old one): a run killed here leaves
            # the previous state or the new one, never half a file
            write_bytes(str(self._state_path(pipeline, step)), json.dumps(state, indent=2, sort_keys=True, default=str).encode())
        else:
            r.status = "failed"
            r.reason = r.reason or f"exit status {code}"
            lines = Path(r.log).read_text(errors="replace").splitlines() if r.log and Path(r.log).exists() else []
            r.log_tail = lines[-LOG_TAIL:]


def feast_available() -> bool:
    """Whether the run's feature steps can use Feast (the `local` extra installs it); without
    it they keep the runtime's own point-in-time join and serving joins offline."""
    import importlib.util

    return importlib.util.find_spec("feast") is not None


def write_feast_repo(plan: Plan, repo: Path) -> None:
    """The local target's Feast repository, as `mlcompile build` renders it, into the
    workdir (its data/ folder — staged sources, registry, online store — is kept)."""
    from mlcompile.targets import feast_repo

    for output in feast_repo.render(plan):
        destination = repo / Path(output.path).relative_to(feast_repo.REPO_DIR)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if not destination.exists() or destination.read_bytes() != output.content:
            destination.write_bytes(output.content)
    for stale in repo.glob("*.py"):  # a renamed system leaves no second definitions module
        if stale.name != f"{feast_repo.module_name(plan)}.py":
            stale.unlink()


def without_materialization(training: Pipeline) -> Pipeline:
    """The training pipeline without the step that fills Feast's online store, for a machine
    without Feast: the feature steps then keep the runtime's own point-in-time join and
    serving joins offline."""
    return Pipeline(training.name, training.description, tuple(s for s in training.steps if s.name != MATERIALIZE_STEP))
