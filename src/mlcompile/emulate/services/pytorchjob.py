"""Kubeflow Training Operator PyTorchJobs: every replica (one Master, the Workers) runs its
`pytorch` container at the same time with the environment the operator gives it for
torch.distributed and torchrun (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and their PET_
forms). Here every replica is on this machine, so the master's address is 127.0.0.1 and its
port a free one, not the `<job>-master-0` Service and port 23456 of a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.emulate.services.execution import Execution, free_port, run_all
from mlcompile.emulate.services.pods import run_pod
from mlcompile.emulate.services.vertex_jobs import now

if TYPE_CHECKING:
    from mlcompile.emulate.services.kube import KubeService

CONTAINER = "pytorch"  # the operator's name for the training container


def run_replicas(execution: Execution, job: dict[str, Any], folder: Path, env: dict[str, str] | None = None) -> tuple[str | None, dict[str, Path]]:
    """Run all replicas; (None or what failed, each replica's log by `master-0`, `worker-1`...)."""
    specs = job["spec"]["pytorchReplicaSpecs"]
    order = [kind for kind in ("Master", "Worker") if kind in specs] + [k for k in specs if k not in ("Master", "Worker")]
    places = [(kind, index) for kind in order for index in range(int(specs[kind].get("replicas", 1)))]
    port = str(free_port())
    deadline = (job["spec"].get("runPolicy") or {}).get("activeDeadlineSeconds")
    tasks = []
    for rank, (kind, index) in enumerate(places):
        replica = f"{kind.lower()}-{index}"
        given = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": str(len(places)), "RANK": str(rank), "PYTHONUNBUFFERED": "1"}
        given.update(PET_MASTER_ADDR="127.0.0.1", PET_MASTER_PORT=port, PET_NNODES=str(len(places)), PET_NODE_RANK=str(rank))
        pod = specs[kind]["template"]["spec"]
        tasks.append(
            lambda pod=pod, replica=replica, given=given: (replica, run_pod(execution, pod, CONTAINER, {**given, **(env or {})}, folder, replica, deadline))
        )
    results = run_all(tasks)
    logs = {replica: log for replica, (_, log) in results}
    failed = [(replica, status) for replica, (status, _) in results if status != 0]
    if failed:
        replica, status = failed[0]
        return f"replica {replica} exited with status {status} (log: {logs[replica]})", logs
    return None, logs


def run_job(service: KubeService, key: str, created: dict[str, Any]) -> None:
    """The operator's reconcile of one PyTorchJob, to its end."""
    assert service.execution is not None
    uid = created["metadata"]["uid"]
    name = created["metadata"]["name"]
    service.store.set_status(
        key,
        uid,
        lambda s: s.update(
            conditions=[_condition("Created", f"PyTorchJob {name} is created."), _condition("Running", f"PyTorchJob {name} is running.")], startTime=now()
        ),
    )
    try:
        error, _ = run_replicas(service.execution, created, service.execution.folder("kubernetes", *key.split("/")))
    except Exception as exc:  # the job must end, whatever went wrong in the emulator
        error = f"the emulator could not run the job: {exc!r}"
    kinds = created["spec"]["pytorchReplicaSpecs"]

    def finish(status: dict[str, Any]) -> None:
        for condition in status["conditions"]:
            condition["status"] = "False" if condition["type"] == "Running" else condition["status"]
        final = "Failed" if error else "Succeeded"
        status["conditions"].append(_condition(final, error or f"PyTorchJob {name} is successfully completed."))
        status["replicaStatuses"] = {kind: {("failed" if error else "succeeded"): int(spec.get("replicas", 1))} for kind, spec in kinds.items()}
        status["completionTime"] = now()

    service.store.set_status(key, uid, finish)


def _condition(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": "True", "reason": f"PyTorchJob{kind}", "message": message, "lastTransitionTime": now()}
