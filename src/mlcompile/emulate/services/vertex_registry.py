"""The Vertex AI Model Registry and Endpoints: models with versions and version aliases (an
alias names one version of a model at a time; the first version is the `default`), and
endpoints whose deployed models share the traffic by a split that must sum to 100, checked
as DeployModel, UndeployModel and UpdateEndpoint check it."""

from __future__ import annotations

import copy
import threading
from typing import Any

from mlcompile.emulate.services.http import ApiError, invalid, not_found
from mlcompile.emulate.services.vertex_jobs import now

DEFAULT_ALIAS = "default"


class VertexRegistry:
    def __init__(self) -> None:
        # model name -> {"name", "versions": [{"request": upload, "model": Model, "aliases": [...]}]}
        self.models: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}  # endpoint id -> Endpoint
        self._lock = threading.RLock()
        self._next = 0

    def _number(self) -> str:
        self._next += 1
        return str(1000 + self._next)

    # ------------------------------------------------------------------ models
    def upload(self, parent: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if body.get("parentModel"):
                name = body["parentModel"]
                if name not in self.models:
                    raise not_found(f"Model {name}")
            else:
                name = f"{parent}/models/{body.get('modelId') or self._number()}"
                if name in self.models:
                    raise ApiError(409, "ALREADY_EXISTS", f"Model {name} already exists: upload a version with parent_model")
                self.models[name] = {"name": name, "versions": []}
            entry = self.models[name]
            version = str(len(entry["versions"]) + 1)
            aliases = list(dict.fromkeys(body["model"].get("versionAliases") or []))
            if not entry["versions"] and DEFAULT_ALIAS not in aliases:
                aliases.append(DEFAULT_ALIAS)
            self._check_aliases(aliases)
            stamp = now()
            model = {
                **body["model"],
                "name": name,
                "versionId": version,
                "createTime": stamp,
                "updateTime": stamp,
                "versionCreateTime": stamp,
                "versionUpdateTime": stamp,
            }
            model.pop("versionAliases", None)
            entry["versions"].append({"request": body, "model": model, "aliases": []})
            self._move_aliases(entry, entry["versions"][-1], aliases)
            return {"model": name, "modelVersionId": version}

    @staticmethod
    def resource(version: dict[str, Any]) -> dict[str, Any]:
        """A version as the API answers it: the Model with its version aliases."""
        return copy.deepcopy({**version["model"], "versionAliases": version["aliases"]})

    @staticmethod
    def _check_aliases(aliases: list[str]) -> None:
        for alias in aliases:
            bare = alias.removeprefix("-")
            if not bare or bare[0].isdigit() or not all(c.isalnum() or c == "-" for c in bare) or bare != bare.lower():
                raise invalid(f"version alias {alias!r}: lower-case letters, digits and '-', not starting with a digit")

    @staticmethod
    def _move_aliases(entry: dict[str, Any], target: dict[str, Any], aliases: list[str]) -> None:
        """Each alias names one version: adding it here takes it from the version that had it;
        `-alias` removes it (the default alias cannot be removed, only moved)."""
        for alias in aliases:
            if alias.startswith("-"):
                if alias[1:] == DEFAULT_ALIAS:
                    raise invalid("the default alias cannot be removed; add it to another version instead")
                target["aliases"] = [a for a in target["aliases"] if a != alias[1:]]
                continue
            for version in entry["versions"]:
                version["aliases"] = [a for a in version["aliases"] if a != alias]
            target["aliases"].append(alias)
            target["model"]["versionUpdateTime"] = now()

    def _record(self, reference: str) -> dict[str, Any]:
        """The version `models/ID`, `models/ID@VERSION` or `models/ID@ALIAS` names (no suffix:
        the default version)."""
        name, _, wanted = reference.partition("@")
        with self._lock:
            if name not in self.models:
                raise not_found(f"Model {name}")
            for version in self.models[name]["versions"]:
                if wanted == version["model"]["versionId"] or (wanted or DEFAULT_ALIAS) in version["aliases"]:
                    return version
        raise not_found(f"Model {reference}")

    def version(self, reference: str) -> dict[str, Any]:
        with self._lock:
            return self.resource(self._record(reference))

    def list_versions(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            if name not in self.models:
                raise not_found(f"Model {name}")
            return [self.resource(v) for v in self.models[name]["versions"]]

    def list_models(self, parent: str, display_name: str | None) -> list[dict[str, Any]]:
        with self._lock:
            names = [n for n in sorted(self.models) if n.startswith(f"{parent}/models/")]
        found = [self.version(n) for n in names]
        return [m for m in found if display_name is None or m.get("displayName") == display_name]

    def merge_aliases(self, reference: str, aliases: list[str]) -> dict[str, Any]:
        self._check_aliases(aliases)
        with self._lock:
            target = self._record(reference)
            self._move_aliases(self.models[target["model"]["name"]], target, aliases)
            return self.resource(target)

    def update_version(self, reference: str, body: dict[str, Any], mask: list[str]) -> dict[str, Any]:
        """UpdateModel of one version (`models/ID@VERSION`): its labels and descriptions."""
        with self._lock:
            target = self._record(reference)
            resource = target["model"]
            for field in mask:
                key = "".join(part.title() if i else part for i, part in enumerate(field.split("_")))
                if key not in ("labels", "versionDescription", "description", "displayName"):
                    raise invalid(f"update_mask: {field} cannot be updated")
                resource[key] = body.get(key)
            resource["versionUpdateTime"] = now()
            return self.resource(target)

    # ------------------------------------------------------------------ endpoints
    def create_endpoint(self, parent: str, ident: str | None, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            ident = ident or self._number()
            if ident in self.endpoints:
                raise ApiError(409, "ALREADY_EXISTS", f"Endpoint {ident} already exists")
            self.endpoints[ident] = {
                **body,
                "name": f"{parent}/endpoints/{ident}",
                "deployedModels": [],
                "trafficSplit": {},
                "createTime": now(),
                "updateTime": now(),
            }
            return copy.deepcopy(self.endpoints[ident])

    def endpoint(self, ident: str) -> dict[str, Any]:
        with self._lock:
            if ident not in self.endpoints:
                raise not_found(f"Endpoint {ident}")
            return copy.deepcopy(self.endpoints[ident])

    def list_endpoints(self, parent: str, display_name: str | None) -> list[dict[str, Any]]:
        with self._lock:
            found = [copy.deepcopy(e) for _, e in sorted(self.endpoints.items()) if e["name"].startswith(f"{parent}/endpoints/")]
        return [e for e in found if display_name is None or e.get("displayName") == display_name]

    @staticmethod
    def _split(split: dict[str, Any], known: set[str]) -> dict[str, int]:
        unknown = sorted(set(split) - known)
        if unknown:
            raise invalid(f"trafficSplit names {', '.join(unknown)}, which is not a DeployedModel of this Endpoint")
        values = {k: int(v) for k, v in split.items()}
        if any(v < 0 for v in values.values()) or sum(values.values()) != 100:
            raise invalid(f"trafficSplit {values}: the traffic percentages must add up to 100")
        return values

    def deploy(self, ident: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            endpoint = self._endpoint(ident)
            deployed = copy.deepcopy(body.get("deployedModel") or {})
            if not deployed.get("model"):
                raise invalid("deployedModel.model is required")
            version = self.version(deployed["model"])
            new_id = deployed.get("id") or self._number()
            known = {m["id"] for m in endpoint["deployedModels"]}
            split = body.get("trafficSplit") or {}
            if split:
                values = self._split(split, known | {"0"})
                endpoint["trafficSplit"] = {(new_id if k == "0" else k): v for k, v in values.items() if v}
            deployed.update(id=new_id, model=version["name"], modelVersionId=version["versionId"], createTime=now())
            endpoint["deployedModels"].append(deployed)
            endpoint["updateTime"] = now()
            return {"deployedModel": copy.deepcopy(deployed)}

    def undeploy(self, ident: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            endpoint = self._endpoint(ident)
            gone = str(body.get("deployedModelId", ""))
            remaining = [m for m in endpoint["deployedModels"] if m["id"] != gone]
            if len(remaining) == len(endpoint["deployedModels"]):
                raise not_found(f"DeployedModel {gone} of Endpoint {ident}")
            split = dict(endpoint["trafficSplit"])
            if body.get("trafficSplit"):
                split = self._split(body["trafficSplit"], {m["id"] for m in endpoint["deployedModels"]})
            if remaining and split.get(gone):
                raise invalid(f"DeployedModel {gone} still takes {split[gone]}% of the traffic: give its share to others in trafficSplit")
            endpoint["deployedModels"] = remaining
            endpoint["trafficSplit"] = {k: v for k, v in split.items() if k != gone and v} if remaining else {}
            endpoint["updateTime"] = now()
            return {}

    def update_endpoint(self, ident: str, body: dict[str, Any], mask: list[str]) -> dict[str, Any]:
        with self._lock:
            endpoint = self._endpoint(ident)
            for field in mask:
                key = "".join(part.title() if i else part for i, part in enumerate(field.split("_")))
                if key == "trafficSplit":
                    endpoint[key] = {k: v for k, v in self._split(body.get(key) or {}, {m["id"] for m in endpoint["deployedModels"]}).items() if v}
                elif key in ("displayName", "description", "labels"):
                    endpoint[key] = body.get(key)
                else:
                    raise invalid(f"update_mask: {field} cannot be updated")
            endpoint["updateTime"] = now()
            return copy.deepcopy(endpoint)

    def _endpoint(self, ident: str) -> dict[str, Any]:
        if ident not in self.endpoints:
            raise not_found(f"Endpoint {ident}")
        endpoint = self.endpoints[ident]
        # an endpoint with nothing deployed has neither field (proto3 leaves empty ones out)
        endpoint.setdefault("deployedModels", [])
        endpoint.setdefault("trafficSplit", {})
        return endpoint
