"""The workspace's model registry as Azure ML's models API shows it (`…/workspaces/W/models/
NAME[/versions/V]`), answered from the workspace's MLflow registry: on Azure ML a model
registered through MLflow is a workspace model, and a version's tags, properties and stage
are one record whichever API reads or writes them.

Stage is the approval: `stage: Production` on a version (`MLClient.models.create_or_update`
of the version with its stage set, or the studio) is the version with MLflow's `production`
alias, the one the runtime serves; every other version shows `Development`. A version PUT
that MLflow does not have yet is registered in it (a model registered with MLClient)."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from mlcompile.emulate.azureml.workspace import AzureWorkspace

PRODUCTION_ALIAS = "production"  # mlcompile.runtime.versions.PRODUCTION
PRODUCTION_STAGE = "Production"
OTHER_STAGE = "Development"
_MODELS = re.compile(
    r"^(?P<workspace>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/workspaces/[^/]+)/models(?:/(?P<name>[^/]+)(?:/versions(?:/(?P<version>[^/]+))?)?)?/?$",
    re.IGNORECASE,
)


def _millis_iso(millis: Any) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(int(millis or 0) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ModelRegistry:
    def __init__(self, workspace: AzureWorkspace) -> None:
        self.workspace = workspace

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any] | None:
        match = _MODELS.match(path)
        if match is None:
            return None
        name, version = match.group("name"), match.group("version")
        try:
            if method == "GET" and name is None:
                return 200, {
                    "value": [
                        self.container(m)
                        for m in self.workspace.mlflow("GET", "registered-models/search", query={"max_results": 1000}).get("registered_models", [])
                    ]
                }
            if method == "GET" and version is None and path.rstrip("/").lower().endswith("/versions"):
                return 200, {"value": self.versions(path.rstrip("/"), name, query)}
            if method == "GET" and version is None:
                return 200, self.container(self.workspace.mlflow("GET", "registered-models/get", query={"name": name})["registered_model"])
            if method == "GET":
                return 200, self.version(path, self._get(name, version))
            if method in ("PUT", "PATCH") and version is not None:
                return self.write(path, name, version, body or {})
        except LookupError:
            return 404, {"error": {"code": "UserError", "message": f"Could not find asset with ID: {path} (the workspace's MLflow has no such model)"}}
        return 405, {"error": {"code": "UserError", "message": f"{method} {path}: not supported by the workspace stand-in"}}

    # -- MLflow -> ARM ----------------------------------------------------------------------
    def _get(self, name: str, version: str) -> dict[str, Any]:
        return dict(self.workspace.mlflow("GET", "model-versions/get", query={"name": name, "version": version})["model_version"])

    def _all(self, name: str) -> list[dict[str, Any]]:
        found = self.workspace.mlflow("GET", "model-versions/search", query={"filter": f"name='{name}'", "max_results": 1000}).get("model_versions", [])
        if not found:
            self.workspace.mlflow("GET", "registered-models/get", query={"name": name})  # LookupError: no such model
        return [dict(v) for v in found]

    def container(self, model: dict[str, Any]) -> dict[str, Any]:
        name = model["name"]
        versions = [int(v["version"]) for v in self._all(name)]
        return {
            "id": f"{self.workspace.path}/models/{name}", "name": name, "type": "Microsoft.MachineLearningServices/workspaces/models",
            "properties": {"description": model.get("description"), "tags": {t["key"]: t["value"] for t in model.get("tags", [])}, "isArchived": False,
                           "latestVersion": str(max(versions)) if versions else None},
            "systemData": {"createdAt": _millis_iso(model.get("creation_timestamp")), "lastModifiedAt": _millis_iso(model.get("last_updated_timestamp"))},
        }  # fmt: skip

    def version(self, path: str, found: dict[str, Any]) -> dict[str, Any]:
        tags = {t["key"]: t["value"] for t in found.get("tags", [])}
        stage = PRODUCTION_STAGE if PRODUCTION_ALIAS in (found.get("aliases") or []) else OTHER_STAGE
        return {
            "id": f"{self.workspace.path}/models/{found['name']}/versions/{found['version']}", "name": str(found["version"]),
            "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
            "properties": {"description": found.get("description"), "tags": tags, "properties": {"mlflow.run_id": found.get("run_id") or ""},
                           "isArchived": False, "isAnonymous": False, "modelType": "custom_model", "modelUri": found.get("source"), "stage": stage,
                           "jobName": found.get("run_id"), "flavors": {}, "provisioningState": "Succeeded"},
            "systemData": {"createdAt": _millis_iso(found.get("creation_timestamp")), "lastModifiedAt": _millis_iso(found.get("last_updated_timestamp"))},
        }  # fmt: skip

    def versions(self, path: str, name: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        found = sorted(self._all(name), key=lambda v: int(v["version"]), reverse=True)  # $orderBy=createdtime desc, the SDK's `@latest`
        stage = next(iter(query.get("stage") or []), None)
        listed = [self.version(path, v) for v in found]
        if stage:
            listed = [v for v in listed if v["properties"]["stage"].lower() == stage.lower()]
        top = next(iter(query.get("$top") or []), None)
        return listed[: int(top)] if top else listed

    # -- ARM -> MLflow ----------------------------------------------------------------------
    def write(self, path: str, name: str, version: str, body: dict[str, Any]) -> tuple[int, Any]:
        properties = body.get("properties") or {}
        created = False
        try:
            self._get(name, version)
        except LookupError:
            self._register(name, version, properties)
            created = True
        for key, value in (properties.get("tags") or {}).items():
            self.workspace.mlflow("POST", "model-versions/set-tag", {"name": name, "version": version, "key": key, "value": str(value)})
        stage = properties.get("stage")
        if stage and str(stage).lower() == PRODUCTION_STAGE.lower():
            self.workspace.mlflow("POST", "registered-models/alias", {"name": name, "alias": PRODUCTION_ALIAS, "version": version})
        elif stage:
            current = self._get(name, version)
            if PRODUCTION_ALIAS in (current.get("aliases") or []):
                self.workspace.mlflow("DELETE", "registered-models/alias", query={"name": name, "alias": PRODUCTION_ALIAS})
        return (201 if created else 200), self.version(path, self._get(name, version))

    def _register(self, name: str, version: str, properties: dict[str, Any]) -> None:
        try:
            self.workspace.mlflow("GET", "registered-models/get", query={"name": name})
        except LookupError:
            self.workspace.mlflow("POST", "registered-models/create", {"name": name})
        created = self.workspace.mlflow(
            "POST", "model-versions/create", {"name": name, "source": str(properties.get("modelUri") or ""), "description": properties.get("description") or ""}
        )
        if str(created["model_version"]["version"]) != str(version):
            # MLflow numbers versions itself; Azure ML takes the version the caller names
            raise LookupError(f"version {version}: the workspace's registry numbered it {created['model_version']['version']}")
