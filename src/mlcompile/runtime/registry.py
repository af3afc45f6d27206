"""The model registry every step of a profile reads and writes: one backend per profile.

- MLflow (`registry_mlflow.py`): local runs (the executor points `MLFLOW_TRACKING_URI` at a
  SQLite file under the workdir) and Kubeflow (the MLflow server the profile names).
- The Vertex AI Model Registry (`registry_vertex.py`): every step of a `vertex` profile
  (its config's `platform.name`), so the champion gate, batch scoring, monitoring and
  deploy-online read the versions the register step uploaded.
- The SageMaker Model Registry (`registry_sagemaker.py`): every step of a `sagemaker`
  profile; `production` is the newest Approved model package of the group.

Aliases: each new version gets the spec's `registry.aliases` (e.g. `candidate`);
`production` marks the approved version, the one that serves. With `approval: auto` a
version that passed its gates gets `production` when it is registered; with `approval:
manual` a person moves it (MLflow UI or client; Vertex AI console, gcloud or
`models.mergeVersionAliases`): that is the approval. Batch scoring, monitoring and serving
use only the `production` version; with none, they say that no version is approved. Only
the local runner (`mlcompile run`, which sets MLCOMPILE_TRY_UNAPPROVED) tries the newest
version before any approval, and says so."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcompile.runtime.container_model import model_folder, registrable
from mlcompile.runtime.contract import ENV_PIPELINE_RUN
from mlcompile.runtime.io import DataError, fingerprint, read_json
from mlcompile.runtime.model import load_meta
from mlcompile.runtime.versions import (
    ENV_TRY_UNAPPROVED,
    PRODUCTION,
    TAG_APPROVAL,
    TAG_ENDPOINT,
    TAG_MODEL_SHA256,
    TAG_PIPELINE_RUN,
    NewVersion,
    Registry,
    ServingModel,
    Version,
)


def platform_name(config: Mapping[str, Any] | None) -> str | None:
    return ((config or {}).get("platform") or {}).get("name")


def backend(config: Mapping[str, Any] | None) -> Registry | None:
    """The profile's registry: Vertex AI's or SageMaker's on those profiles, else MLflow when a tracking
    URI is known; None without any (a step then runs with no champion to compare with)."""
    if platform_name(config) == "vertex":
        from mlcompile.runtime.registry_vertex import VertexRegistry

        return VertexRegistry(config or {})
    if platform_name(config) == "sagemaker":
        from mlcompile.runtime.registry_sagemaker import SageMakerRegistry

        return SageMakerRegistry(config or {})
    from mlcompile.runtime.registry_mlflow import MlflowRegistry, tracking_uri

    uri = tracking_uri(config)
    return MlflowRegistry(uri) if uri else None


def _newest(versions: list[Version]) -> Version | None:
    return max(versions, key=lambda v: int(v.version)) if versions else None


def production_model(config: Mapping[str, Any], model: str, version_id: str | None = None, *, try_unapproved: bool | None = None) -> ServingModel | None:
    """The approved version (alias `production`) — or the version `version_id` when one is
    pinned (a KServe revision, `mlcompile serve --version`) — downloaded to a temporary
    folder; None when no version is approved (or there is no registry). The local runner
    alone tries the newest version before any approval (MLCOMPILE_TRY_UNAPPROVED)."""
    registry = backend(config)
    if registry is None:
        return None
    if version_id:
        pinned = registry.get(model, version_id)
        if pinned is None:
            raise DataError(f"{model} has no version {version_id} in the {registry.kind} registry")
        folder = registry.download(pinned, Path(tempfile.mkdtemp(prefix="mlcompile-model-")))
        return ServingModel(model, pinned.version, None, f"version {pinned.version} (pinned)", folder, pinned.run_id)
    version = registry.with_alias(model, PRODUCTION)
    alias: str | None = PRODUCTION
    reason = f"alias '{PRODUCTION}'"
    if version is None:
        if not (os.environ.get(ENV_TRY_UNAPPROVED) == "1" if try_unapproved is None else try_unapproved):
            return None
        version = _newest(registry.versions(model))
        if version is None:
            return None
        alias = None
        reason = f"no version has alias '{PRODUCTION}' yet (approve one: set the alias); trying the newest version on this machine"
    folder = registry.download(version, Path(tempfile.mkdtemp(prefix="mlcompile-model-")))
    return ServingModel(model, version.version, alias, reason, folder, version.run_id)


def not_approved(config: Mapping[str, Any], model: str | None) -> str:
    """Why nothing serves yet: the message batch scoring, monitoring and serving give."""
    registry = backend(config)
    where = f" in the {registry.kind} registry" if registry is not None else ""
    how = getattr(registry, "how_to_approve", None) or f"giving it the alias '{PRODUCTION}'"
    return f"no approved version of {model}{where}: approve one by {how}"


def new_aliases(params: Mapping[str, Any]) -> list[str]:
    aliases = list(params.get("aliases") or [])
    if params.get("approval") == "auto" and PRODUCTION not in aliases:
        aliases.append(PRODUCTION)  # auto = approved on passing gates: this version serves
    return aliases


def lineage_tags(config: Mapping[str, Any], meta: Mapping[str, Any], model_sha256: str) -> dict[str, str]:
    """What a version records of where it came from (both backends store these)."""
    from mlcompile import __version__

    lineage = config.get("lineage") or {}
    data = meta.get("data") or {}
    tags = {
        "mlcompile.system": config.get("system") or "",
        "mlcompile.spec_sha256": config.get("spec_sha256") or "",
        "mlcompile.profile_sha256": lineage.get("profile_sha256") or "",
        "mlcompile.git_commit": lineage.get("git_commit") or "",
        "mlcompile.version": __version__,
        TAG_PIPELINE_RUN: os.environ.get(ENV_PIPELINE_RUN, ""),
        TAG_MODEL_SHA256: model_sha256,
        "mlcompile.data.train_sha256": data.get("train_sha256") or "",
        "mlcompile.data.events_until": str(data.get("events_until") or ""),
    }
    for source, info in sorted((data.get("sources") or {}).items()):
        tags[f"mlcompile.data.source.{source}.sha256"] = str(info.get("sha256") or "")
        tags[f"mlcompile.data.source.{source}.uri"] = str(info.get("uri") or "")
    return tags


def _where(registry: Registry) -> dict[str, str]:
    """Which registry a result speaks of: its kind, and MLflow's tracking URI or Vertex AI's location."""
    return {"registry": registry.kind, ("tracking_uri" if registry.kind == "mlflow" else "location"): registry.location}


def register(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    params = config["params"]
    registry = backend(config)
    if registry is None:
        raise DataError("register: no model registry: set MLFLOW_TRACKING_URI (mlcompile run sets it to the workdir's SQLite file)")
    name = params["model"]
    evaluation = read_json(inputs["metrics"])
    metrics = evaluation.get("metrics", evaluation)
    aliases = new_aliases(params)
    with model_folder(inputs["model"]) as trained, registrable(trained, config, inputs, metrics) as folder:
        meta = load_meta(folder)
        model_sha256 = fingerprint(str(folder)) or ""
        same = [v for v in registry.versions(name) if model_sha256 and v.tags.get(TAG_MODEL_SHA256) == model_sha256]
        existing = _newest(same)
        if existing is not None:  # the same model (a resumed or repeated run): no new version
            registry.set_aliases(name, existing.version, aliases)
            print(f"{name} version {existing.version} is this very model (sha256 {model_sha256[:12]}): not registered again")
            return {"model": name, "version": existing.version, "aliases": aliases, "run_id": existing.run_id, "approval": existing.tags.get(TAG_APPROVAL),
                    **_where(registry), "existing": True}  # fmt: skip
        approval = "approved" if params.get("approval", "manual") == "auto" else "pending"
        tags = {**lineage_tags(config, meta, model_sha256), TAG_APPROVAL: approval, **{k: str(v) for k, v in (params.get("tags") or {}).items()}}
        version = registry.create(NewVersion(config, name, folder, inputs["model"], meta, tags, metrics, evaluation))
    registry.set_aliases(name, version.version, aliases)
    print(f"registered {name} version {version.version} in {registry.kind} (aliases: {', '.join(aliases) or '-'}; approval {approval})")
    return {"model": name, "version": version.version, "aliases": aliases, "run_id": version.run_id, "approval": approval, **_where(registry)}


def deploy_online(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """Deploy the approved version to the endpoint. In a training pipeline (approval auto)
    that is this pipeline run's version, which gets `production`; on its own (the approval
    path of `approval: manual`) it is the version a person gave `production`. The endpoint
    then serves it: Vertex AI deploys it (DeployModel with the rollout's traffic split), KServe
    gets a new revision pinned to it (canaryTrafficPercent); locally the alias is the endpoint."""
    from mlcompile.runtime.rollout import roll_out

    params = config["params"]
    registry = backend(config)
    if registry is None:
        raise DataError("deploy-online: no model registry (MLFLOW_TRACKING_URI)")
    name = params["model"]
    pipeline_run = os.environ.get(ENV_PIPELINE_RUN)
    mine = [v for v in registry.versions(name) if pipeline_run and v.tags.get(TAG_PIPELINE_RUN) == pipeline_run]
    target = _newest(mine) or registry.with_alias(name, PRODUCTION)
    if target is None:
        raise DataError(not_approved(config, name))
    registry.set_aliases(name, target.version, [PRODUCTION])
    registry.set_tag(name, target.version, TAG_ENDPOINT, params["endpoint"])
    rollout = roll_out(config, target)
    print(f"endpoint {params['endpoint']}: {name} version {target.version} is '{PRODUCTION}'" + (f"; {rollout['note']}" if rollout.get("note") else ""))
    return {"endpoint": params["endpoint"], "model": name, "version": target.version, "alias": PRODUCTION, "registry": registry.kind, **rollout}
