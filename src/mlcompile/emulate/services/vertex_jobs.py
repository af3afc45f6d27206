"""Vertex AI CustomJobs and HyperparameterTuningJobs, executed: every replica of every worker
pool runs as a container with the environment Vertex gives it, and a tuning job runs its
trials (at most parallelTrialCount at a time), each with `--NAME=VALUE` arguments appended and
its own output folders, and reads each trial's metric where cloudml-hypertune writes it."""

from __future__ import annotations

import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlcompile.emulate.services.execution import Execution, free_port, run_all
from mlcompile.emulate.services.search import Parameter, assignments

HYPERTUNE_FILE_ENV = "CLOUD_ML_HP_METRIC_FILE"  # where cloudml-hypertune writes (default /tmp/hypertune/output.metrics)
TF_TASK_TYPES = ("chief", "worker", "ps", "evaluator")  # TF_CONFIG's names of worker pools 0..3
_ALGORITHMS = {"GRID_SEARCH": "grid"}  # RANDOM_SEARCH and the default (Bayesian) draw at random
# the REST transport sends enums as their numbers (aiplatform_v1's StudySpec enums)
_ENUMS = {
    "algorithm": {0: "ALGORITHM_UNSPECIFIED", 2: "GRID_SEARCH", 3: "RANDOM_SEARCH"},
    "scaleType": {0: "SCALE_TYPE_UNSPECIFIED", 1: "UNIT_LINEAR_SCALE", 2: "UNIT_LOG_SCALE", 3: "UNIT_REVERSE_LOG_SCALE"},
    "goal": {0: "GOAL_TYPE_UNSPECIFIED", 1: "MAXIMIZE", 2: "MINIMIZE"},
}
_ENDED = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}


class JobRequestError(ValueError):
    """A job Vertex would refuse at creation (INVALID_ARGUMENT)."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def enum(message: dict[str, Any], field: str) -> str:
    value = message.get(field, 0)
    return _ENUMS[field].get(value, str(value)) if isinstance(value, int) else str(value)


def study_parameters(study: dict[str, Any]) -> list[Parameter]:
    parameters = []
    for spec in study.get("parameters") or []:
        log = enum(spec, "scaleType") == "UNIT_LOG_SCALE"
        name = spec["parameterId"]
        # JSON leaves out a bound that is 0 (proto3's default)
        if "doubleValueSpec" in spec:
            bounds = spec["doubleValueSpec"]
            parameters.append(Parameter(name, "double", float(bounds.get("minValue", 0)), float(bounds.get("maxValue", 0)), log=log))
        elif "integerValueSpec" in spec:
            bounds = spec["integerValueSpec"]
            parameters.append(Parameter(name, "int", int(bounds.get("minValue", 0)), int(bounds.get("maxValue", 0)), log=log))
        elif "categoricalValueSpec" in spec:
            parameters.append(Parameter(name, "categorical", values=tuple(spec["categoricalValueSpec"]["values"])))
        elif "discreteValueSpec" in spec:
            parameters.append(Parameter(name, "discrete", values=tuple(float(v) for v in spec["discreteValueSpec"]["values"])))
        else:
            raise JobRequestError(f"parameter {name}: no value spec")
        if "doubleValueSpec" in spec and enum(study, "algorithm") == "GRID_SEARCH":
            raise JobRequestError(f"parameter {name}: GRID_SEARCH supports only integer, discrete and categorical parameters")
    return parameters


def argument(value: Any) -> str:
    """A trial's value as its `--NAME=VALUE` argument carries it."""
    return str(int(value)) if isinstance(value, int) else str(value)


class VertexJobs:
    """The job service's CustomJobs and HyperparameterTuningJobs (by resource name)."""

    def __init__(self, execution: Execution, jobs: dict[str, dict[str, Any]]) -> None:
        self.execution = execution
        self.jobs = jobs  # resource name -> CustomJob or HyperparameterTuningJob
        self._lock = threading.Lock()
        self._next = 0

    # ------------------------------------------------------------------ the API
    def create(self, parent: str, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        if collection == "hyperparameterTuningJobs":
            study_parameters(body.get("studySpec") or {})  # refuse a bad search space now, as Vertex does
            if not (body.get("studySpec") or {}).get("metrics"):
                raise JobRequestError("studySpec.metrics: a tuning job needs a metric")
        pools = self._pools(body["jobSpec" if collection == "customJobs" else "trialJobSpec"])
        if not pools:
            raise JobRequestError("workerPoolSpecs: no worker pool has a replica")
        with self._lock:
            self._next += 1
            name = f"{parent}/{collection}/{self._next}"
            self.jobs[name] = {**body, "name": name, "state": "JOB_STATE_PENDING", "createTime": now(), "updateTime": now()}
            created = copy.deepcopy(self.jobs[name])
        self.execution.background(lambda: self._execute(name, collection))
        return created

    def get(self, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.jobs[name])

    def cancel(self, name: str) -> None:
        with self._lock:
            job = self.jobs[name]
            if job["state"] not in _ENDED:
                job["state"] = "JOB_STATE_CANCELLED" if job["state"] == "JOB_STATE_PENDING" else "JOB_STATE_CANCELLING"

    def listed(self, parent: str, collection: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(j) for n, j in sorted(self.jobs.items()) if n.startswith(f"{parent}/{collection}/")]

    # ------------------------------------------------------------------ execution
    def _update(self, name: str, **fields: Any) -> None:
        with self._lock:
            self.jobs[name].update(fields, updateTime=now())

    def _cancelled(self, name: str) -> bool:
        with self._lock:
            return self.jobs[name]["state"] in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")

    def _execute(self, name: str, collection: str) -> None:
        with self._lock:
            job = self.jobs[name]
            if job["state"] == "JOB_STATE_CANCELLED":
                return
            job.update(state="JOB_STATE_RUNNING", startTime=now())
            body = copy.deepcopy(job)
        try:
            if collection == "customJobs":
                error = self._run_spec(name, body["jobSpec"], [], None)
            else:
                error = self._tune(name, body)
        except Exception as exc:  # a defect of the emulator must not leave the job running forever
            error = f"the emulator could not run the job: {exc!r}"
        if self._cancelled(name):
            self._update(name, state="JOB_STATE_CANCELLED", endTime=now())
        elif error:
            self._update(name, state="JOB_STATE_FAILED", endTime=now(), error={"code": 3, "message": error})
        else:
            self._update(name, state="JOB_STATE_SUCCEEDED", endTime=now())

    @staticmethod
    def _pools(spec: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
        """(pool index, pool) of the pools that run replicas: an empty pool keeps its index."""
        return [(i, p) for i, p in enumerate(spec.get("workerPoolSpecs") or []) if p and int(p.get("replicaCount", 1) or 0) > 0]

    def _run_spec(self, name: str, spec: dict[str, Any], extra_args: list[str], trial: str | None) -> str | None:
        """Every replica of every pool at once; None when all exit 0, else what failed."""
        pools = self._pools(spec)
        addresses = {i: [f"127.0.0.1:{free_port()}" for _ in range(int(p.get("replicaCount", 1)))] for i, p in pools}
        base = (spec.get("baseOutputDirectory") or {}).get("outputUriPrefix", "").rstrip("/")
        outputs = f"{base}/{trial}" if base and trial else base
        job_id = name.rsplit("/", 1)[1]
        folder = self.execution.folder("vertex", *name.split("/")[-2:], *(["trials", trial] if trial else []))
        timeout = float(str((spec.get("scheduling") or {}).get("timeout", "0s")).rstrip("s") or 0) or None
        tasks = []
        for index, pool in pools:
            for replica in range(len(addresses[index])):
                env = {e["name"]: e.get("value", "") for e in _container(pool).get("env") or []}
                env["CLOUD_ML_JOB_ID"] = job_id
                if trial:
                    env["CLOUD_ML_TRIAL_ID"] = trial
                    env.setdefault(HYPERTUNE_FILE_ENV, str(folder / "hypertune" / "output.metrics"))
                if outputs:
                    env.update(AIP_MODEL_DIR=f"{outputs}/model", AIP_CHECKPOINT_DIR=f"{outputs}/checkpoints", AIP_TENSORBOARD_LOG_DIR=f"{outputs}/logs")
                task = {"type": f"workerpool{index}", "index": replica, **({"trial": trial} if trial else {})}
                cluster = {f"workerpool{i}": hosts for i, hosts in addresses.items()}
                env["CLUSTER_SPEC"] = json.dumps({"cluster": cluster, "environment": "cloud", "task": task, "job": spec})
                tf_cluster = {TF_TASK_TYPES[i]: hosts for i, hosts in addresses.items() if i < len(TF_TASK_TYPES)}
                tf_task = {**task, "type": TF_TASK_TYPES[index] if index < len(TF_TASK_TYPES) else task["type"]}
                env["TF_CONFIG"] = json.dumps({"cluster": tf_cluster, "environment": "cloud", "task": tf_task, "job": spec})
                tasks.append(self._replica_task(pool, extra_args, env, folder, f"workerpool{index}-{replica}", timeout))
        statuses = run_all(tasks)
        failed = [(replica, status) for replica, status in statuses if status != 0]
        if failed:
            replica, status = failed[0]
            return f"The replica {replica} exited with a non-zero status of {status}. See {folder / (replica + '.log')}"
        return None

    def _replica_task(self, pool: dict[str, Any], extra_args: list[str], env: dict[str, str], folder: Path, replica: str, timeout: float | None) -> Any:
        container = _container(pool)
        if "pythonPackageSpec" in pool:
            image, command = container["executorImageUri"], ["python", "-m", container["pythonModule"]]
        else:
            image, command = container["imageUri"], list(container.get("command") or [])
        args = [*(container.get("args") or []), *extra_args]
        return lambda: (replica, self.execution.run(image, command, args, env, folder, replica, timeout)[0])

    # ------------------------------------------------------------------ tuning
    def _tune(self, name: str, job: dict[str, Any]) -> str | None:
        study = job["studySpec"]
        metric_ids = [m["metricId"] for m in study["metrics"]]
        parameters = study_parameters(study)
        count = int(job.get("maxTrialCount") or 1)
        allowed_failures = int(job.get("maxFailedTrialCount") or 0) or count
        search = assignments(parameters, _ALGORITHMS.get(enum(study, "algorithm"), "random"), seed=name)
        planned = [point for _, point in zip(range(count), search)]
        self._update(name, trials=[])

        def trial(number: int, point: dict[str, Any]) -> None:
            trial_id = str(number)
            if self._cancelled(name):
                return
            entry: dict[str, Any] = {
                "id": trial_id,
                "state": "ACTIVE",
                "parameters": [{"parameterId": k, "value": v} for k, v in point.items()],
                "startTime": now(),
            }
            with self._lock:
                self.jobs[name]["trials"].append(entry)
            args = [f"--{k}={argument(v)}" for k, v in point.items()]
            error = self._run_spec(name, job["trialJobSpec"], args, trial_id)
            folder = self.execution.folder("vertex", *name.split("/")[-2:], "trials", trial_id)
            measured = None if error else read_hypertune(_metric_file(job["trialJobSpec"], folder, self.execution), metric_ids)
            with self._lock:
                entry["endTime"] = now()
                if error:  # Vertex's trials have no failed state: a trial that fails is infeasible
                    entry["state"] = "INFEASIBLE"
                    entry["infeasibleReason"] = error
                elif measured is None:
                    entry["state"] = "INFEASIBLE"
                    entry["infeasibleReason"] = f"the trial reported none of {', '.join(metric_ids)} (cloudml-hypertune, {HYPERTUNE_FILE_ENV})"
                else:
                    entry["state"] = "SUCCEEDED"
                    entry["finalMeasurement"] = measured

        with ThreadPoolExecutor(max_workers=max(1, int(job.get("parallelTrialCount") or 1))) as pool:
            list(pool.map(lambda item: trial(*item), enumerate(planned, start=1)))
        with self._lock:
            trials = self.jobs[name]["trials"]
            trials.sort(key=lambda t: int(t["id"]))
            failures = [t for t in trials if t["state"] != "SUCCEEDED"]
        if len(failures) >= allowed_failures or len(failures) == len(trials):
            reasons = "; ".join(f"trial {t['id']}: {t.get('infeasibleReason', t['state'])}" for t in failures[:3])
            return f"{len(failures)} of {len(trials)} trials failed: {reasons}"
        return None


def _container(pool: dict[str, Any]) -> dict[str, Any]:
    return pool.get("containerSpec") or pool.get("pythonPackageSpec") or {}


def _metric_file(spec: dict[str, Any], folder: Path, execution: Execution) -> Path:
    """The trial's hypertune file: the chief's own CLOUD_ML_HP_METRIC_FILE when its job spec
    sets one, else the trial's private copy of cloudml-hypertune's default."""
    pools = VertexJobs._pools(spec)
    env = {e["name"]: e.get("value", "") for e in _container(pools[0][1]).get("env") or []}
    return Path(execution.localize(env[HYPERTUNE_FILE_ENV])) if HYPERTUNE_FILE_ENV in env else folder / "hypertune" / "output.metrics"


def read_hypertune(path: Path, metric_ids: list[str]) -> dict[str, Any] | None:
    """The final measurement as Vertex takes it from cloudml-hypertune's file (one JSON object
    a line, the metric under its tag): each metric's last reported value."""
    if not path.is_file():
        return None
    values: dict[str, float] = {}
    step = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        for metric in metric_ids:
            if metric in record:
                values[metric] = float(record[metric])
                step = int(record.get("global_step") or 0)
    if not all(m in values for m in metric_ids[:1]):
        return None
    return {"stepCount": str(step), "metrics": [{"metricId": m, "value": values[m]} for m in metric_ids if m in values]}
