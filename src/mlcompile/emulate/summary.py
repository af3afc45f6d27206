"""The JSON summary of an emulated run (`--format json`). Its shape is stable: every key is
present, with null where nothing was observed (a pipeline that did not run, a registry the
emulator cannot read). Platform stand-ins report what they saw through `session.facts`
(keys `registered`, `deployed`, `retraining`), which wins over what the emulator reads itself."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from mlcompile.emulate.ir import FAILED, SUCCEEDED, PipelineResult
from mlcompile.runtime import emulated_storage as storage


def summarize(session: Any) -> dict[str, Any]:
    facts = session.facts
    submitted = (facts.get("retraining") or {}).get("submitted") or _submitted(session)
    retrained = next((r for r in session.results if submitted and (r.run_id == submitted or submitted.endswith(f"/{r.run_id}"))), None)
    scheduled = [r for r in session.results if r is not retrained]  # what the emulator started itself
    by_kind = {kind: _result(scheduled, f"{session.system}-{kind}") for kind in ("training", "batch-scoring", "monitoring")}
    registered = {"model": session.plan.registry.model, "version": None, "registry": None}
    registered.update(_mlflow_version(session, [r for r in session.results if r.name == f"{session.system}-training"]))
    registered.update(facts.get("registered") or {})
    deployed = {"endpoint": session.plan.online.name if session.plan.online else None, "version": None, "traffic": None}
    deployed.update(facts.get("deployed") or {})
    skipped = dict(getattr(session, "skipped", {}))
    batch_reason = skipped.get(f"{session.system}-batch-scoring")
    retraining = {
        "requested": _ran(by_kind["monitoring"], "trigger-retraining"),
        "submitted": submitted,
        "status": retrained.status.lower() if retrained else None,
        "gate": _gate(retrained),
        "version": registered["version"] if _ran(retrained, "register") else None,  # what the retraining run registered
        "tasks": {t.name: t.status.lower() for t in retrained.tasks.values()} if retrained else None,
    }
    retraining.update(facts.get("retraining") or {})
    return {
        "system": session.system,
        "profile": session.profile,
        "platform": session.platform,
        "status": "failed" if any(r.status == FAILED for r in session.results) else "succeeded",
        "workdir": str(session.work),
        "pipelines": {**{r.name: r.status.lower() for r in scheduled}, **{name: "skipped" for name in skipped}},
        "skipped": skipped,
        "tasks": {r.name: {t.name: t.status.lower() for t in r.tasks.values()} for r in scheduled},
        "failures": [
            {"pipeline": r.name, "task": t.name, "reason": t.reason, "log": str(t.log) if t.log else None} for r in session.results for t in r.failed()
        ],
        "gate": {"passed": _gate(by_kind["training"])},
        "registered": registered,
        "approved": facts.get("approved"),
        "deployed": deployed,
        "batch": {"rows": _batch_rows(session, by_kind["batch-scoring"]), **({"reason": batch_reason} if batch_reason else {})},
        "monitoring": {"breach": _breach(by_kind["monitoring"])},
        "retraining": retraining,
    }


def _result(results: list[PipelineResult], name: str) -> PipelineResult | None:
    return next((r for r in results if r.name == name), None)


def _ran(result: PipelineResult | None, task_prefix: str) -> bool | None:
    if result is None:
        return None
    return any(t.name.startswith(task_prefix) and t.status == SUCCEEDED for t in result.tasks.values())


def _mlflow_version(session: Any, trainings: list[PipelineResult]) -> dict[str, Any]:
    """The newest version of the model in the emulated MLflow, if a training run's register
    step registered one."""
    mlflow = session.facts.get("mlflow")
    if mlflow is None:
        return {}
    found: dict[str, Any] = {"registry": mlflow["uri"]}
    if not any(_ran(training, "register") for training in trainings):
        return found
    query = urllib.parse.urlencode({"filter": f"name='{session.plan.registry.model}'", "max_results": 1000})
    try:
        with urllib.request.urlopen(f"{mlflow['local']}/api/2.0/mlflow/model-versions/search?{query}", timeout=10) as response:
            versions = json.loads(response.read()).get("model_versions", [])
    except OSError:
        return found
    if versions:
        found["version"] = str(max(int(v["version"]) for v in versions))
    return found


def _submitted(session: Any) -> str | None:
    """The run a trigger-retraining task submitted, from its `retraining` output artifact
    (what the platform's UI shows for the task); None when none submitted one."""
    for result in session.results:
        for task in result.tasks.values():
            artifact = task.artifacts.get("retraining") if task.name.startswith("trigger-retraining") and task.status == SUCCEEDED else None
            path = _local(session, artifact["uri"]) if artifact else None
            if path is None or not path.is_file():
                continue
            try:
                submitted = json.loads(path.read_text()).get("submitted")
            except (ValueError, AttributeError):
                continue
            if submitted:
                return str(submitted)
    return None


def _local(session: Any, uri: str) -> Any:
    if uri.startswith("file://"):
        from pathlib import Path

        return Path(uri[len("file://") :])
    return storage.local_path(uri, session.root) if storage.is_cloud(uri) else None


def _batch_rows(session: Any, batch: PipelineResult | None) -> int | None:
    task = batch.tasks.get("score-batch") if batch else None
    scores = task.artifacts.get("scores") if task and task.status == SUCCEEDED else None
    if not scores:
        return None
    path = storage.local_path(scores["uri"], session.root) if storage.is_cloud(scores["uri"]) else None
    if path is None or not path.is_file():
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _gate(training: PipelineResult | None) -> bool | None:
    """The evaluation gates' decision (None when the training pipeline has no gate or did not
    reach it)."""
    gate = training.tasks.get("gate") if training else None
    decision = gate.parameters.get("decision") if gate else None
    return decision if isinstance(decision, bool) else None


def _breach(monitoring: PipelineResult | None) -> bool | None:
    if monitoring is None:
        return None
    values = [v for t in monitoring.tasks.values() if t.name.startswith("check-") for v in t.parameters.values() if isinstance(v, bool)]
    return any(values) if values else None
