"""The Vertex AI Model Registry backend: every step of a vertex profile reads and writes it
through google-cloud-aiplatform's ModelServiceClient (REST; MLCOMPILE_VERTEX_API_ENDPOINT
overrides the regional endpoint, as `mlcompile deploy` and the launcher do).

A version is an uploaded Model version (`parent_model`: the registry model's name is its
model id), with the spec's aliases as version aliases (`production` = approved, what serves).
What a version records — lineage, approval, metrics, the endpoint that serves it — is kept
exactly in its `version_description` (JSON: Vertex AI label values allow only 63 lowercase
characters) and mirrored into version labels for the console and `labels.` filters."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcompile.runtime.contract import ENV_VERTEX_API_ENDPOINT
from mlcompile.runtime.io import DataError, local_dir
from mlcompile.runtime.versions import NewVersion, Version

LABELLED = ("mlcompile.approval", "mlcompile.pipeline_run", "mlcompile.model_sha256", "mlcompile.endpoint")


def client_options(platform: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of an aiplatform_v1 service client for the profile's region (or the
    MLCOMPILE_VERTEX_API_ENDPOINT override; a local one with anonymous credentials)."""
    endpoint = os.environ.get(ENV_VERTEX_API_ENDPOINT) or f"{platform['region']}-aiplatform.googleapis.com"
    options: dict[str, Any] = {"client_options": {"api_endpoint": endpoint}, "transport": "rest"}
    if endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        from google.auth.credentials import AnonymousCredentials

        options["credentials"] = AnonymousCredentials()
    return options


def label(text: str) -> str:
    """A Vertex AI label key or value: lowercase letters, digits, `_` and `-`, ≤ 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def _record(model: Any) -> dict[str, Any]:
    try:
        found = json.loads(model.version_description or "{}")
    except ValueError:  # a version someone uploaded by hand, with prose
        found = {}
    return found if isinstance(found, dict) else {}


class VertexRegistry:
    kind = "vertex"

    def __init__(self, config: Mapping[str, Any]) -> None:
        from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient

        self.config = config
        platform = config["platform"]
        self.location = f"projects/{platform['project']}/locations/{platform['region']}"
        self.client = ModelServiceClient(**client_options(platform))

    def name(self, model: str) -> str:
        return f"{self.location}/models/{model}"

    def _version(self, found: Any) -> Version:
        tags = {str(k): str(v) for k, v in (_record(found).get("tags") or {}).items()}
        return Version(found.name.rsplit("/", 1)[-1].split("@")[0], str(found.version_id), tuple(found.version_aliases), tags, None, found.artifact_uri or None)

    def _get(self, resource: str) -> Any:
        from google.api_core import exceptions

        try:
            return self.client.get_model(name=resource)
        except exceptions.NotFound:
            return None

    def versions(self, model: str) -> list[Version]:
        from google.api_core import exceptions

        try:
            return [self._version(m) for m in self.client.list_model_versions(name=self.name(model))]
        except exceptions.NotFound:
            return []

    def get(self, model: str, version: str) -> Version | None:
        found = self._get(f"{self.name(model)}@{version}")
        return None if found is None else self._version(found)

    def with_alias(self, model: str, alias: str) -> Version | None:
        return self.get(model, alias)

    def set_aliases(self, model: str, version: str, aliases: list[str]) -> None:
        if aliases:  # an alias names one version of a model: Vertex AI moves it here
            self.client.merge_version_aliases(name=f"{self.name(model)}@{version}", version_aliases=list(aliases))

    def set_tag(self, model: str, version: str, key: str, value: str) -> None:
        from google.cloud.aiplatform_v1 import types as gca
        from google.protobuf import field_mask_pb2

        found = self._get(f"{self.name(model)}@{version}")
        if found is None:
            raise DataError(f"{self.name(model)}@{version}: no such model version")
        record = _record(found)
        record["tags"] = {**(record.get("tags") or {}), key: value}
        labels = dict(found.labels)
        if key in LABELLED:
            labels[label(key)] = label(value)
        update = gca.Model(name=f"{self.name(model)}@{version}", version_description=json.dumps(record, sort_keys=True), labels=labels)
        self.client.update_model(model=update, update_mask=field_mask_pb2.FieldMask(paths=["version_description", "labels"]))

    def download(self, version: Version, destination: Path) -> Path:
        if not version.artifact_uri:
            raise DataError(f"model version {version.model}@{version.version} has no artifact URI: it was not uploaded by mlcompile")
        with local_dir(version.artifact_uri, write=False) as folder:
            shutil.copytree(folder, destination / "model", dirs_exist_ok=True)
        return destination / "model"

    def create(self, new: NewVersion) -> Version:
        """Upload the model folder as a new version (the model itself when it does not exist
        yet), from the build's upload request (serving container, labels) when the step has it."""
        from google.cloud.aiplatform_v1 import types as gca
        from google.protobuf import json_format

        template = ((self.config.get("platform_job") or {}).get("body") or {}).get("model") or {"displayName": new.model}
        model = gca.Model.wrap(json_format.ParseDict(template, gca.Model.pb()()))
        model.artifact_uri = _artifact_uri(new.uri)
        _complete(model.artifact_uri, new.folder)
        model.version_aliases.clear()  # set after the upload, as for a version registered again
        model.version_description = json.dumps(
            {"tags": new.tags, "metrics": {k: v for k, v in new.metrics.items() if isinstance(v, (int, float))}}, sort_keys=True
        )
        model.labels.update({label(k): label(v) for k, v in new.tags.items() if k in LABELLED and v})
        request = gca.UploadModelRequest(parent=self.location, model=model)
        if self._get(self.name(new.model)) is not None:
            request.parent_model = self.name(new.model)
        else:
            request.model_id = new.model
        result = self.client.upload_model(request=request).result(timeout=1800)
        print(f"uploaded {result.model} version {result.model_version_id}", flush=True)
        return Version(new.model, str(result.model_version_id), (), dict(new.tags), None, model.artifact_uri)


def _complete(uri: str, folder: Path) -> None:
    """Write the model.json and drift baseline that register staged for a container-trained
    model into the uploaded folder: Vertex AI keeps the folder at the artifact URI, and the
    endpoint, batch scoring and drift monitoring read the version from there."""
    import shutil

    from mlcompile.runtime.baseline import BASELINE_FILE
    from mlcompile.runtime.container_model import MANIFEST

    with local_dir(uri, write=True) as target:
        if target.resolve() == folder.resolve():
            return
        for name in (MANIFEST, BASELINE_FILE):
            if (folder / name).is_file():
                shutil.copy2(folder / name, target / name)


def _artifact_uri(uri: str) -> str:
    """The model folder's URI as Vertex AI reads it: a KFP task's /gcs/ mount is its gs:// URI."""
    return "gs://" + uri[len("/gcs/") :] if uri.startswith("/gcs/") else uri
