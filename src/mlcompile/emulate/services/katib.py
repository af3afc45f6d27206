"""Katib Experiments: the admission check, then trials (at most parallelTrialCount at a time,
maxTrialCount in all), each a Trial object whose job is the trial template with Katib's one
substitution: `${trialParameters.NAME}`, where a trial parameter's `reference` is a search
parameter or a trial metadata field (`${trialSpec.Name}`, `.Namespace`, `.Kind`,
`.APIVersion`, `.Labels[key]`, `.Annotations[key]`). Any other `${...}` stays as written.
Metrics are read as Katib's collectors read them: `name=value` lines of the primary
container's output (StdOut, the default) or of a file (File: TEXT lines, or JSON lines),
for the objective metric and the additionalMetricNames; the experiment's status carries each
trial's observation and the currentOptimalTrial."""

from __future__ import annotations

import json
import random
import re
import string
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.emulate.services import pytorchjob
from mlcompile.emulate.services.pods import run_pod
from mlcompile.emulate.services.search import Parameter, SearchSpaceError, assignments
from mlcompile.emulate.services.vertex_jobs import now

if TYPE_CHECKING:
    from mlcompile.emulate.services.kube import KubeService

DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"  # Katib's default metricsFormat
_TRIAL_PARAMETER = re.compile(r"\$\{trialParameters\.([^}]+)\}")
_METADATA = re.compile(r"\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels\[(.+)\]|Annotations\[(.+)\])\}")
_RANDOM_TRIALS = 10  # a random search without maxTrialCount


def validate(experiment: dict[str, Any]) -> str | None:
    """What Katib's admission webhook would refuse in the trial template, or None."""
    spec = experiment.get("spec") or {}
    template = spec.get("trialTemplate") or {}
    if "trialSpec" not in template:
        return "spec.trialTemplate.trialSpec is required (the emulator does not read trial templates from ConfigMaps)"
    names = {p["name"] for p in spec.get("parameters") or []}
    declared = {tp["name"]: tp.get("reference", tp["name"]) for tp in template.get("trialParameters") or []}
    used = set(_TRIAL_PARAMETER.findall(json.dumps(template["trialSpec"])))
    if used - set(declared):
        return f"spec.trialTemplate: parameters {sorted(used - set(declared))} are used in trialSpec but not defined in trialParameters"
    if set(declared) - used:
        return f"spec.trialTemplate: trialParameters {sorted(set(declared) - used)} are not used in trialSpec"
    for name, reference in declared.items():
        if reference not in names and not _METADATA.fullmatch(reference):
            return f"spec.trialTemplate.trialParameters {name}: reference {reference!r} is neither a parameter nor a trial metadata field"
    if not (spec.get("objective") or {}).get("objectiveMetricName"):
        return "spec.objective.objectiveMetricName is required"
    return None


def search_parameters(spec: dict[str, Any]) -> list[Parameter]:
    parameters = []
    for p in spec.get("parameters") or []:
        space = p.get("feasibleSpace") or {}
        kind = p.get("parameterType", "double")
        if space.get("list"):
            parameters.append(Parameter(p["name"], kind, values=tuple(space["list"])))
        else:
            step = float(space["step"]) if space.get("step") else None
            parameters.append(Parameter(p["name"], kind, float(space["min"]), float(space["max"]), log=space.get("distribution") == "logUniform", step=step))
    return parameters


def trial_job(template: dict[str, Any], trial: str, namespace: str, assignment: dict[str, str], rewrites: dict[str, str]) -> dict[str, Any]:
    """The trial's job manifest: the template with its trial parameters substituted."""
    metadata = template["trialSpec"].get("metadata") or {}
    fields = {"Name": trial, "Namespace": namespace, "Kind": template["trialSpec"].get("kind", ""), "APIVersion": template["trialSpec"].get("apiVersion", "")}
    text = json.dumps(template["trialSpec"])
    for path, private in rewrites.items():
        text = text.replace(json.dumps(path)[1:-1], json.dumps(private)[1:-1])
    for parameter in template.get("trialParameters") or []:
        reference = parameter.get("reference", parameter["name"])
        if reference in assignment:
            value = assignment[reference]
        else:
            field = _METADATA.fullmatch(reference)
            assert field is not None  # validate() refused others
            label, annotation = field.group(2), field.group(3)
            value = (
                (metadata.get("labels") or {}).get(label, "")
                if label
                else (metadata.get("annotations") or {}).get(annotation, "")
                if annotation
                else fields[field.group(1)]
            )
        text = text.replace("${trialParameters.%s}" % parameter["name"], json.dumps(value)[1:-1])
    job = json.loads(text)
    job.setdefault("metadata", {}).update(name=trial, namespace=namespace)
    return job


def collect(collector: dict[str, Any], lines: list[str], names: list[str]) -> dict[str, list[float]]:
    """Each wanted metric's reported values, in order, as Katib's collectors parse them."""
    values: dict[str, list[float]] = {name: [] for name in names}
    source = collector.get("source") or {}
    json_lines = ((source.get("fileSystemPath") or {}).get("format") or "TEXT") == "JSON"
    filters = [re.compile(f) for f in ((source.get("filter") or {}).get("metricsFormat") or [DEFAULT_FILTER])]
    for line in lines:
        if json_lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            for name in names:
                if isinstance(record, dict) and name in record:
                    values[name].append(float(record[name]))
            continue
        for pattern in filters:
            for match in pattern.finditer(line):
                name, value = match.group(1).strip(), match.group(2)
                if name in values and value not in ("", "+", "-"):
                    values[name].append(float(value))
    return values


def observation(values: dict[str, list[float]]) -> dict[str, Any]:
    return {"metrics": [{"name": n, "min": _text(min(v)), "max": _text(max(v)), "latest": _text(v[-1])} for n, v in values.items() if v]}


def _text(value: float) -> str:
    return repr(value) if not value.is_integer() else str(int(value)) if abs(value) < 1e15 else repr(value)


def trial_name(experiment: str) -> str:
    return f"{experiment}-{''.join(random.choices(string.ascii_lowercase + string.digits, k=8))}"[:63]


class _Experiment:
    def __init__(self, service: KubeService, key: str, created: dict[str, Any]) -> None:
        assert service.execution is not None
        self.service, self.key, self.created = service, key, created
        self.execution = service.execution
        self.spec = created["spec"]
        self.namespace, self.name = key.split("/")[0], created["metadata"]["name"]
        self.uid = created["metadata"]["uid"]
        objective = self.spec["objective"]
        self.maximize = objective.get("type", "maximize") == "maximize"
        self.metric = objective["objectiveMetricName"]
        self.names = [self.metric, *(objective.get("additionalMetricNames") or [])]
        self.goal = float(objective["goal"]) if objective.get("goal") is not None else None
        self.trials: dict[str, dict[str, Any]] = {}  # name -> {"state", "assignment", "values"}
        self.stop_reason: str | None = None
        self._lock = threading.RLock()  # trials run on several threads

    def alive(self) -> bool:
        return self.service.store.set_status(self.key, self.uid, lambda s: None)

    def best(self) -> tuple[str, dict[str, Any]] | None:
        scored = [(n, t) for n, t in self.trials.items() if t["state"] == "Succeeded" and t["values"].get(self.metric)]
        if not scored:
            return None
        strategy = max if self.maximize else min  # Katib's default metricStrategy of the objective
        return strategy(scored, key=lambda item: strategy(item[1]["values"][self.metric]))

    def publish(self, final: tuple[str, str, str] | None = None) -> None:
        with self._lock:
            states = {n: t["state"] for n, t in self.trials.items()}
            best = self.best()

        def update(status: dict[str, Any]) -> None:
            status.setdefault("startTime", now())
            status["conditions"] = [
                _condition("Created", "ExperimentCreated", "Experiment is created"),
                _condition("Running", "ExperimentRunning", "Experiment is running", final is None),
            ]
            for state, field in (
                ("Succeeded", "succeededTrialList"),
                ("Failed", "failedTrialList"),
                ("Running", "runningTrialList"),
                ("MetricsUnavailable", "metricsUnavailableTrialList"),
            ):
                status[field] = sorted(n for n, s in states.items() if s == state)
            status.update(trials=len(states), trialsSucceeded=len(status["succeededTrialList"]), trialsRunning=len(status["runningTrialList"]))
            status["trialsFailed"] = len(status["failedTrialList"]) + len(status["metricsUnavailableTrialList"])
            if best is not None:
                name, trial = best
                status["currentOptimalTrial"] = {
                    "bestTrialName": name,
                    "parameterAssignments": [{"name": k, "value": v} for k, v in trial["assignment"].items()],
                    "observation": observation(trial["values"]),
                }
            if final is not None:
                status["conditions"].append(_condition(*final))
                status["completionTime"] = now()

        self.service.store.set_status(self.key, self.uid, update)

    def run(self) -> None:
        problem = None
        try:
            parameters = search_parameters(self.spec)
            algorithm = "grid" if (self.spec.get("algorithm") or {}).get("algorithmName") == "grid" else "random"
            count = int(self.spec.get("maxTrialCount") or (10**6 if algorithm == "grid" else _RANDOM_TRIALS))
            planned = [point for _, point in zip(range(count), assignments(parameters, algorithm, seed=self.uid))]
        except (SearchSpaceError, KeyError, ValueError) as exc:
            planned, problem = [], f"the search space cannot be searched: {exc}"
        self.publish()
        if problem is None:
            with ThreadPoolExecutor(max_workers=max(1, int(self.spec.get("parallelTrialCount") or 3))) as pool:
                list(pool.map(self.trial, planned))
        failed = sum(t["state"] != "Succeeded" for t in self.trials.values())
        allowed = self.spec.get("maxFailedTrialCount")
        if problem is not None:
            self.publish(("Failed", "ExperimentFailed", problem))
        elif allowed is not None and failed > int(allowed):
            self.publish(("Failed", "ExperimentMaxFailedTrialsReached", f"{failed} trials failed, more than maxFailedTrialCount {allowed}"))
        elif self.stop_reason == "goal":
            self.publish(("Succeeded", "ExperimentGoalReached", "Experiment has succeeded because Objective goal has reached"))
        elif self.alive():
            reason = "ExperimentMaxTrialsReached" if len(self.trials) == int(self.spec.get("maxTrialCount") or -1) else "ExperimentSuggestionEndReached"
            self.publish(("Succeeded", reason, "Experiment has succeeded because max trial count has reached"))

    def trial(self, point: dict[str, Any]) -> None:
        if self.stop_reason or not self.alive():
            return
        name = trial_name(self.name)
        assignment = {k: (str(int(v)) if isinstance(v, int) else str(v)) for k, v in point.items()}
        folder = self.execution.folder("kubernetes", self.namespace, "trials", name)
        template = self.spec["trialTemplate"]
        collector = (self.spec.get("metricsCollectorSpec") or {}).get("collector", {}).get("kind", "StdOut")
        file_path = ((self.spec.get("metricsCollectorSpec") or {}).get("source") or {}).get("fileSystemPath", {}).get("path")
        rewrites = {file_path: str(folder / "metrics" / Path(file_path).name)} if collector == "File" and file_path else {}
        (folder / "metrics").mkdir(exist_ok=True)  # Katib mounts the metrics file's folder into the pod
        job = trial_job(template, name, self.namespace, assignment, rewrites)
        with self._lock:
            self.trials[name] = {"state": "Running", "assignment": assignment, "values": {}}
        self._trial_object(name, job, assignment)
        self.publish()
        try:
            error, log = self._run(job, template.get("primaryContainerName"), folder)
        except Exception as exc:  # the trial must end, whatever went wrong in the emulator
            error, log = f"the emulator could not run the trial: {exc!r}", None
        lines: list[str] = []
        source = Path(next(iter(rewrites.values()))) if rewrites else log
        if source is not None and source.is_file():
            lines = [line for line in source.read_text(encoding="utf-8", errors="replace").splitlines() if not line.startswith("$ ")]
        values = collect(self.spec.get("metricsCollectorSpec") or {}, lines, self.names)
        state = "Failed" if error else ("Succeeded" if values.get(self.metric) else "MetricsUnavailable")
        with self._lock:
            self.trials[name].update(state=state, values=values)
        self._trial_status(name, state, error, values)
        if state == "Succeeded" and self.goal is not None:
            value = values[self.metric][-1]
            if (value >= self.goal) if self.maximize else (value <= self.goal):
                self.stop_reason = "goal"
        self.publish()

    def _run(self, job: dict[str, Any], primary: str | None, folder: Path) -> tuple[str | None, Path | None]:
        kind = job.get("kind")
        if kind == "PyTorchJob":
            error, logs = pytorchjob.run_replicas(self.execution, job, folder)
            return error, logs.get("master-0")
        if kind == "Job":
            spec = job["spec"]
            status, log = run_pod(self.execution, spec["template"]["spec"], primary, {}, folder, "trial", spec.get("activeDeadlineSeconds"))
            return (f"the trial's container exited with status {status} (log: {log})" if status else None), log
        return f"the emulator runs Job and PyTorchJob trials, not {kind}", None

    def _trial_object(self, name: str, job: dict[str, Any], assignment: dict[str, str]) -> None:
        trial = {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Trial",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {"katib.kubeflow.org/experiment": self.name},
                "ownerReferences": [{"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "name": self.name, "uid": self.uid, "controller": True}],
            },
            "spec": {"objective": self.spec["objective"], "parameterAssignments": [{"name": k, "value": v} for k, v in assignment.items()], "runSpec": job},
            "status": {
                "conditions": [_condition("Created", "TrialCreated", "Trial is created"), _condition("Running", "TrialRunning", "Trial is running")],
                "startTime": now(),
            },
        }
        self.service.store.create(lambda n: f"{self.namespace}/trials/{n}", trial)

    def _trial_status(self, name: str, state: str, error: str | None, values: dict[str, list[float]]) -> None:
        key = f"{self.namespace}/trials/{name}"
        uid = self.service.store.objects.get(key, {}).get("metadata", {}).get("uid", "")
        message = error or ("Trial has succeeded" if state == "Succeeded" else f"Metrics are not available: {self.metric} was not reported")

        def update(status: dict[str, Any]) -> None:
            status["conditions"][-1]["status"] = "False"
            status["conditions"].append(_condition(state, f"Trial{state}", message))
            status.update(observation=observation(values), completionTime=now())

        self.service.store.set_status(key, uid, update)


def run_experiment(service: KubeService, key: str, created: dict[str, Any]) -> None:
    """Katib's experiment controller for one Experiment, to its end."""
    _Experiment(service, key, created).run()


def _condition(kind: str, reason: str, message: str, true: bool = True) -> dict[str, Any]:
    return {"type": kind, "status": "True" if true else "False", "reason": reason, "message": message, "lastUpdateTime": now(), "lastTransitionTime": now()}
