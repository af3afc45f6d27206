"""KServe InferenceServices (serverless mode): every change of the predictor makes a new
revision, ready at once; with `canaryTrafficPercent` the new revision takes that share and the
last rolled-out revision the rest, without it (or at 100) the new revision takes all traffic
and becomes the rolled-out one. The status carries the revisions and the traffic per revision
as KServe reports them, so an approval or a rollout can be observed through the API."""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from mlcompile.emulate.services.vertex_jobs import now

if TYPE_CHECKING:
    from mlcompile.emulate.services.kube import KubeService


def _predictor(obj: dict[str, Any]) -> str:
    """The predictor as a revision sees it (the canary share is routing, not a revision)."""
    predictor = copy.deepcopy((obj.get("spec") or {}).get("predictor") or {})
    predictor.pop("canaryTrafficPercent", None)
    metadata = obj.get("metadata") or {}
    return json.dumps({"predictor": predictor, "annotations": metadata.get("annotations") or {}}, sort_keys=True)


def reconcile(service: KubeService, key: str, obj: dict[str, Any]) -> None:
    namespace, _, name = key.split("/")
    revisions = service.revisions.setdefault(key, [])
    state = (obj.get("status") or {}).get("components", {}).get("predictor", {})
    rolled_out = state.get("latestRolledoutRevision")
    previous = state.get("previousRolledoutRevision")
    if not revisions or revisions[-1]["template"] != _predictor(obj):
        revision = f"{name}-predictor-{len(revisions) + 1:05d}"
        revisions.append({"name": revision, "template": _predictor(obj), "predictor": copy.deepcopy(obj["spec"].get("predictor") or {}), "created": now()})
    latest = revisions[-1]["name"]
    canary = (obj["spec"].get("predictor") or {}).get("canaryTrafficPercent")
    if canary is None or int(canary) >= 100 or rolled_out is None or rolled_out == latest:
        if rolled_out != latest:
            previous, rolled_out = rolled_out, latest
        traffic = [{"revisionName": latest, "percent": 100, "latestRevision": True, "tag": "latest"}]
    else:  # the candidate takes the canary share, the last rolled-out revision the rest
        traffic = [
            {"revisionName": latest, "percent": int(canary), "latestRevision": True, "tag": "latest"},
            {"revisionName": rolled_out, "percent": 100 - int(canary), "latestRevision": False, "tag": "prev"},
        ]
    traffic = [t for t in traffic if t["percent"] > 0] or traffic[:1]
    url = f"http://{name}.{namespace}.example.com"
    predictor = {"latestCreatedRevision": latest, "latestReadyRevision": latest, "latestRolledoutRevision": rolled_out, "traffic": traffic, "url": url}
    if previous:
        predictor["previousRolledoutRevision"] = previous
    uid = obj["metadata"]["uid"]
    generation = obj["metadata"].get("generation", 1)
    ready = [
        {"type": kind, "status": "True", "lastTransitionTime": now()}
        for kind in ("IngressReady", "PredictorConfigurationReady", "PredictorReady", "PredictorRouteReady", "Ready")
    ]

    def update(status: dict[str, Any]) -> None:
        status.update(
            url=url,
            address={"url": f"http://{name}.{namespace}.svc.cluster.local"},
            components={"predictor": predictor},
            conditions=ready,
            observedGeneration=generation,
        )

    service.store.set_status(key, uid, update)
    service.on_change("deployed")


def serving(service: KubeService, key: str) -> list[tuple[dict[str, Any], int]]:
    """The predictor of each revision that takes traffic now, with its percent."""
    status = service.store.get(key).get("status") or {}
    by_name = {r["name"]: r["predictor"] for r in service.revisions.get(key, [])}
    return [(by_name[t["revisionName"]], t["percent"]) for t in status.get("components", {}).get("predictor", {}).get("traffic", [])]
