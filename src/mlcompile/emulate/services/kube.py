"""The Kubernetes API server on 127.0.0.1, for namespaced custom objects (what the
`kubernetes` client's CustomObjectsApi and the kubeflow launcher use): create, get, list (with
a label selector), replace, merge or JSON patch, delete, and the status subresource. Objects
of the kinds the emulator runs have a controller: a Katib Experiment runs its trials, a
PyTorchJob its replicas, a KServe InferenceService gets revisions and a traffic split."""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

from mlcompile.emulate.services import katib, kserve, pytorchjob
from mlcompile.emulate.services.execution import Execution
from mlcompile.emulate.services.http import JsonService
from mlcompile.emulate.services.vertex_jobs import now

_PATH = re.compile(r"/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?(/status)?")


class KubeError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> tuple[int, Any]:
        return self.code, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: a null removes a key, an object merges, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902's add, replace and remove (what controllers and kubectl send)."""
    document = copy.deepcopy(target)
    for operation in operations:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        node = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if operation["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), operation["value"]) if operation["op"] == "add" else node.__setitem__(
                int(last), operation["value"]
            )
        elif operation["op"] in ("add", "replace"):
            node[last] = operation["value"]
        else:
            raise KubeError(422, "Invalid", f"unsupported patch operation {operation['op']!r}")
    return document


class ObjectStore:
    """Namespaced objects by `namespace/plural/name`, shared by the API and the controllers."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self._version = 0

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._version)
        return obj

    def create(self, key_of: Callable[[str], str], body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            metadata = body.setdefault("metadata", {})
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
            if not metadata.get("name"):
                raise KubeError(422, "Invalid", "metadata.name: Required value")
            key = key_of(metadata["name"])
            if key in self.objects:
                raise KubeError(409, "AlreadyExists", f"{key} already exists")
            metadata.update(uid=str(uuid.uuid4()), creationTimestamp=now().split(".")[0] + "Z", generation=1)
            self.objects[key] = self._stamp(copy.deepcopy(body))
            return copy.deepcopy(self.objects[key])

    def get(self, key: str) -> dict[str, Any]:
        with self.lock:
            if key not in self.objects:
                raise KubeError(404, "NotFound", f"{key} not found")
            return copy.deepcopy(self.objects[key])

    def replace(self, key: str, body: dict[str, Any], status_only: bool = False) -> dict[str, Any]:
        with self.lock:
            current = self.get(key)
            if status_only:
                updated = {**current, "status": body.get("status", {})}
            else:
                updated = {**body, "status": current.get("status", body.get("status"))}
                kept = {k: current["metadata"][k] for k in ("uid", "creationTimestamp", "generation", "name") if k in current["metadata"]}
                updated["metadata"] = {**(body.get("metadata") or {}), **kept}
                if updated.get("spec") != current.get("spec"):
                    updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
            self.objects[key] = self._stamp(updated)
            return copy.deepcopy(self.objects[key])

    def set_status(self, key: str, uid: str, change: Callable[[dict[str, Any]], None]) -> bool:
        """Let a controller change its object's status; False once the object is gone."""
        with self.lock:
            obj = self.objects.get(key)
            if obj is None or obj["metadata"].get("uid") != uid:
                return False
            change(obj.setdefault("status", {}))
            self._stamp(obj)
            return True

    def listed(self, prefix: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            found = [o for k, o in sorted(self.objects.items()) if k.startswith(prefix)]
            return [copy.deepcopy(o) for o in found if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]


# (service, key, created object) -> None: what runs when an object of that kind is created
Controller = Callable[["KubeService", str, dict[str, Any]], None]


def _controllers(executes: bool) -> dict[tuple[str, str], tuple[Controller, bool]]:
    """(group, plural) -> (controller, runs in the background); jobs run only under emulation."""
    controllers: dict[tuple[str, str], tuple[Controller, bool]] = {("serving.kserve.io", "inferenceservices"): (kserve.reconcile, False)}
    if executes:
        controllers[("kubeflow.org", "experiments")] = (katib.run_experiment, True)
        controllers[("kubeflow.org", "pytorchjobs")] = (pytorchjob.run_job, True)
    return controllers


class KubeService(JsonService):
    def __init__(self, execution: Execution | None = None) -> None:
        self.execution = execution
        self.store = ObjectStore()
        self.objects = self.store.objects
        self.revisions: dict[str, list[dict[str, Any]]] = {}  # InferenceService key -> its revisions
        self.controllers = _controllers(execution is not None)
        super().__init__()
        self.host = self.url

    def kubeconfig(self, folder: Path) -> Path:
        """A kubeconfig whose current context is this API server (for the client, KUBECONFIG)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": self.host}}],
            "users": [{"name": "emulated", "user": {"token": "emulated"}}],
            "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "emulated"}}],
            "current-context": "emulated",
        }
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        try:
            body = json.loads(raw) if raw else None
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            return self.route(method, url.path, query, body, content_type)
        except KubeError as error:
            return error.status()
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as error:
            return KubeError(400, "BadRequest", f"cannot apply the request: {error}").status()

    def route(self, method: str, path: str, query: dict[str, str], body: Any, content_type: str) -> tuple[int, Any]:
        match = _PATH.fullmatch(path)
        if not match:
            raise KubeError(404, "NotFound", f"the server could not find the requested resource ({path})")
        group, version, namespace, plural, name, status = match.groups()
        prefix = f"{namespace}/{plural}/"
        if name is None and method == "GET":
            selector = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p)
            return 200, {"apiVersion": f"{group}/{version}", "kind": "List", "metadata": {}, "items": self.store.listed(prefix, selector)}
        if name is None and method == "POST":
            refused = katib.validate(body) if ("kubeflow.org", "experiments") == (group, plural) and (group, plural) in self.controllers else None
            if refused:
                raise KubeError(400, "BadRequest", f'admission webhook "validator.experiment.katib.kubeflow.org" denied the request: {refused}')
            created = self.store.create(lambda n: prefix + n, body)
            key = prefix + created["metadata"]["name"]
            controller = self.controllers.get((group, plural))
            if controller is not None:
                run, background = controller
                if background and self.execution is not None:
                    self.execution.background(lambda: run(self, key, created))
                else:
                    run(self, key, created)
            return 201, self.store.get(key)
        key = prefix + str(name)
        if method == "GET":
            return 200, self.store.get(key)
        if method == "DELETE":
            with self.store.lock:
                removed = self.store.get(key)
                del self.objects[key]  # a controller running it sees it gone and stops
            return 200, {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Success",
                "details": {"name": name, "kind": plural, "uid": removed["metadata"].get("uid")},
            }
        if method in ("PUT", "PATCH"):
            current = self.store.get(key)
            given = body.get("metadata") or {} if isinstance(body, dict) else {}
            if method == "PUT" and given.get("name") != name:
                raise KubeError(400, "BadRequest", f"the name of the object ({given.get('name')}) does not match the name on the URL ({name})")
            if given.get("resourceVersion") and given["resourceVersion"] != current["metadata"]["resourceVersion"]:
                raise KubeError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; please apply your changes to the latest version and try again',
                )
            if method == "PATCH":
                body = json_patch(current, body) if "json-patch" in content_type else merge_patch(current, body)
            updated = self.store.replace(key, body, status_only=bool(status))
            controller = self.controllers.get((group, plural))
            if not status and controller is not None and not controller[1]:  # a synchronous controller sees every change
                controller[0](self, key, updated)
                updated = self.store.get(key)
            return 200, updated
        raise KubeError(405, "MethodNotAllowed", f"{method} {path}")
