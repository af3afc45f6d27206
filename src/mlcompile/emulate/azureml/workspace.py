"""The Azure ML workspace of an emulated run: its default datastore (a folder under the
emulation root), its data assets (kept by the ARM stand-in), and its MLflow tracking server
(the emulator's MLflow on 127.0.0.1, where Azure ML's is behind the workspace's
`azureml://…/mlflow/v1.0/…` URI). Every job gets the variables Azure ML sets in a job:
MLFLOW_TRACKING_URI, MLFLOW_RUN_ID (the run Azure ML opens for the job),
MLFLOW_EXPERIMENT_NAME, AZUREML_RUN_ID and AZUREML_ARM_*.

The workspace's model registry is the one MLflow's registry API and Azure ML's models API
both show (models registered through MLflow are workspace models on Azure ML): the ARM
stand-in answers `…/models/…` from the MLflow registry (registry.py)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcompile.emulate.ir import PipelineError
from mlcompile.runtime import emulated_storage as storage

DATASTORE = "workspaceblobstore"
DATASTORE_URI = "azureml://datastores/{datastore}/paths/"


@dataclass
class AzureWorkspace:
    subscription: str
    resource_group: str
    name: str
    root: Path  # emulation root
    tracking: str  # the local MLflow server (http://127.0.0.1:port)
    arm: Any = None  # mlcompile.emulate.services.azure_arm.ArmStandIn, for data assets
    region: str = "westeurope"
    _experiments: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def path(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"

    @property
    def tracking_uri(self) -> str:
        """The workspace's MLflow URI as Azure ML names it (what the summary reports)."""
        return f"azureml://{self.region}.api.azureml.ms/mlflow/v1.0{self.path}"

    # -- storage --------------------------------------------------------------------------
    def datastore_path(self, *parts: str, datastore: str = DATASTORE) -> tuple[str, Path]:
        """The URI and local folder of a path on a datastore."""
        relative = "/".join(p.strip("/") for p in parts if p)
        return DATASTORE_URI.format(datastore=datastore) + relative, self.root / "azureml" / datastore / relative

    def local(self, uri: str) -> Path:
        """The local path of a data URI (azureml:// datastore paths, cloud URIs, local paths)."""
        if uri.startswith("azureml://") or storage.is_cloud(uri):
            try:
                return storage.local_path(uri, self.root)
            except storage.UnmappedURI as exc:
                raise PipelineError(str(exc)) from None
        return Path(uri.removeprefix("file://"))

    def asset_path(self, reference: str) -> Path:
        """`azureml:name@latest`, `azureml:name:version`, an asset's ARM id, or an
        `azureml://datastores/…` path: the local path of the data it names."""
        if reference.startswith("azureml://"):
            return self.local(reference)
        name, version = _asset_reference(reference)
        container = f"{self.path}/data/{name}"
        if version in (None, "latest"):
            found = self.arm.get(container) if self.arm is not None else None
            version = ((found or {}).get("properties") or {}).get("latestVersion")
            if version is None:
                raise PipelineError(f"data asset {name} has no version in workspace {self.name} ({reference})")
        asset = self.arm.get(f"{container}/versions/{version}") if self.arm is not None else None
        if asset is None:
            raise PipelineError(f"data asset {name}:{version} does not exist in workspace {self.name}")
        return self.local(str(asset["properties"].get("dataUri", "")))

    def register_data(self, name: str, data: Any) -> str:
        """A new version of data asset `name` pointing at a job's output (a named pipeline output)."""
        container = f"{self.path}/data/{name}"
        found = self.arm.get(container) or {}
        latest = str((found.get("properties") or {}).get("latestVersion") or "0")
        version = str(int(latest) + 1) if latest.isdigit() else "1"
        body = {"properties": {"dataType": data.type, "dataUri": data.uri, "isAnonymous": False, "tags": {}}}
        self.arm.handle("PUT", f"{container}/versions/{version}", {}, body)
        return version

    # -- MLflow (its REST API: the emulator itself does not import mlflow) ----------------
    def mlflow(self, method: str, route: str, body: Mapping[str, Any] | None = None, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        import json
        import urllib.error
        import urllib.parse
        import urllib.request

        url = f"{self.tracking}/api/2.0/mlflow/{route}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            answer = exc.read().decode(errors="replace")
            if exc.code == 404 or "RESOURCE_DOES_NOT_EXIST" in answer:
                raise LookupError(answer) from None
            raise PipelineError(f"the workspace's MLflow refused {method} {route}: {answer[:300]}") from None

    def _experiment(self, name: str) -> str:
        with self._lock:
            if name not in self._experiments:
                try:
                    found = self.mlflow("GET", "experiments/get-by-name", query={"experiment_name": name})["experiment"]["experiment_id"]
                except LookupError:
                    found = self.mlflow("POST", "experiments/create", {"name": name})["experiment_id"]
                self._experiments[name] = str(found)
            return self._experiments[name]

    def start_run(self, experiment: str, name: str, parent: str | None = None, tags: Mapping[str, str] | None = None) -> str:
        import time

        all_tags = {**(tags or {}), **({"mlflow.parentRunId": parent} if parent else {})}
        shown = all_tags.pop("mlflow.runName", name)  # the studio's display name
        body = {
            "experiment_id": self._experiment(experiment),
            "run_name": shown,
            "start_time": int(time.time() * 1000),
            "tags": [{"key": k, "value": v} for k, v in all_tags.items()],
        }
        return str(self.mlflow("POST", "runs/create", body)["run"]["info"]["run_id"])

    def end_run(self, run_id: str, succeeded: bool) -> None:
        import time

        self.mlflow("POST", "runs/update", {"run_id": run_id, "status": "FINISHED" if succeeded else "FAILED", "end_time": int(time.time() * 1000)})

    def metric_history(self, run_id: str, key: str) -> list[float]:
        try:
            metrics = self.mlflow("GET", "metrics/get-history", query={"run_id": run_id, "metric_key": key}).get("metrics", [])
        except LookupError:
            return []
        return [float(m["value"]) for m in sorted(metrics, key=lambda m: (int(m.get("step", 0)), int(m.get("timestamp", 0))))]

    def job_env(self, experiment: str, run_id: str) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.tracking,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_EXPERIMENT_NAME": experiment,
            "AZUREML_RUN_ID": run_id,
            "AZUREML_ARM_SUBSCRIPTION": self.subscription,
            "AZUREML_ARM_RESOURCEGROUP": self.resource_group,
            "AZUREML_ARM_WORKSPACE_NAME": self.name,
            "AZUREML_ARM_PROJECT_NAME": experiment,
        }


def _asset_reference(reference: str) -> tuple[str, str | None]:
    """(name, version or label) of `azureml:name@label`, `azureml:name:version` or an ARM id."""
    text = reference.removeprefix("azureml:")
    if text.startswith("/subscriptions/"):
        parts = text.strip("/").split("/")
        if "versions" in parts:
            index = parts.index("versions")
            return parts[index - 1], parts[index + 1]
        return parts[-1], None
    if "@" in text:
        name, _, label = text.partition("@")
        return name, label
    name, _, version = text.partition(":")
    return name, version or None
