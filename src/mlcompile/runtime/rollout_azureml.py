"""deploy-online on Azure ML: a managed online endpoint serves an approved registry version.

The endpoint has slots (`blue`, `green`: one managed online deployment each, defined by the
build's deployment files, which the step's config carries as `serving.deployments`). A
version is put in the slot that does not serve now, as `azureml:<model>:<version>` (the
workspace's model registry holds the versions the register step created), then traffic moves:

- canary: the new slot takes `canary_percent`, the serving slot keeps the rest, so the
  candidate serves a share of requests next to the previously approved version;
- blue_green: the new slot takes all traffic once it is up; the other keeps its version at
  0% (the way back is one traffic change);
- replace (one slot): the slot is updated in place.

The first version ever rolled out takes all traffic (there is nothing to compare it with).
Rolling out the version a slot already serves with traffic changes nothing."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcompile.runtime.versions import Version

TAG_MODEL_VERSION = "mlcompile-model-version"
FILE_TAG = "mlcompile-file-sha256"  # what `mlcompile deploy` compares (targets/azureml/deploy.py)
_VERSION_OF = re.compile(r"(?:/models/(?P<arm_name>[^/]+)/versions/(?P<arm_version>[^/]+)$)|(?:^azureml:(?P<name>[^:@]+):(?P<version>[^:@]+)$)")


def served_version(model: Any) -> str | None:
    """The registry version a deployment's model reference names (ARM id or azureml:name:version)."""
    match = _VERSION_OF.search(str(model or ""))
    return None if match is None else match.group("arm_version") or match.group("version")


def plan_traffic(
    slots: list[str], live: dict[str, str | None], traffic: dict[str, int], strategy: str, canary_percent: int | None
) -> tuple[str, dict[str, int]]:
    """(slot to put the new version in, the endpoint's traffic after it). `live`: slot →
    version of the deployments that exist; `traffic`: the endpoint's split now."""
    serving = max((s for s in slots if live.get(s) and traffic.get(s, 0) > 0), key=lambda s: traffic.get(s, 0), default=None)
    if serving is None:
        return slots[0], {slots[0]: 100}
    target = next((s for s in slots if s != serving), serving)
    if target == serving:
        return target, {target: 100}
    share = 100 if strategy == "blue_green" else int(canary_percent or 0)
    return target, {target: share, serving: 100 - share}


def roll_out(config: dict[str, Any], version: Version) -> dict[str, Any]:
    import io

    import yaml
    from azure.ai.ml import load_online_deployment
    from azure.core.exceptions import ResourceNotFoundError

    from mlcompile.runtime.azureml_client import ml_client

    serving = config["serving"]
    client = ml_client(config["platform"])
    endpoint = client.online_endpoints.get(serving["endpoint"])
    traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items()}
    live: dict[str, str | None] = {}
    for slot in serving["slots"]:
        try:
            live[slot] = served_version(client.online_deployments.get(slot, endpoint.name).model)
        except ResourceNotFoundError:
            continue
    for slot, served in live.items():
        if served == version.version and traffic.get(slot, 0) > 0:
            return {"traffic": traffic, "deployment": slot, "note": f"{endpoint.name}/{slot} already serves version {version.version} (traffic {traffic})"}
    target, split = plan_traffic(list(serving["slots"]), live, traffic, serving["strategy"], serving.get("canary_percent"))
    definition = serving["deployments"][target]
    deployment = load_online_deployment(io.StringIO(yaml.safe_dump(definition["body"])))
    deployment.model = f"azureml:{version.model}:{version.version}"
    deployment.tags = {**(deployment.tags or {}), FILE_TAG: definition["file_sha256"], TAG_MODEL_VERSION: version.version}
    client.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {slot: split.get(slot, 0) for slot in [*live, target]}
    client.online_endpoints.begin_create_or_update(endpoint).result()
    return {
        "traffic": endpoint.traffic,
        "deployment": target,
        "note": f"{endpoint.name}/{target} now serves version {version.version} (traffic {endpoint.traffic})",
    }
