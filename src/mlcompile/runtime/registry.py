"""The ML metadata store and model registry: MLflow (tracking + registry).

Locally the executor points `MLFLOW_TRACKING_URI` at a SQLite file under the profile's
workdir; in the cloud the same code talks to the MLflow server the profile names. A step
that finds no tracking URI runs without a registry (no champion to compare with).

Aliases: each new version gets the spec's `registry.aliases` (e.g. `candidate`);
`production` marks the version that serves. With `approval: auto` a version that passed its
gates gets `production` when it is registered (deploy-online then records its endpoint on
it); with `approval: manual` a human sets it (MLflow UI, or the `mlflow` client). Batch scoring and monitoring use `production`, and on a
machine where nothing was approved yet, the newest version (said so in their output)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.runtime.container_model import model_folder, registrable
from mlcompile.runtime.io import DataError, fingerprint, read_json
from mlcompile.runtime.model import load_meta

PRODUCTION = "production"
MODEL_ARTIFACT = "mlcompile-model"
ENV_ARTIFACT_ROOT = "MLCOMPILE_ARTIFACT_ROOT"
ENV_PIPELINE_RUN = "MLCOMPILE_PIPELINE_RUN"


@dataclass
class ServingModel:
    name: str
    version: str
    alias: str | None
    reason: str
    folder: Path
    run_id: str | None


def tracking_uri(config: dict[str, Any] | None = None) -> str | None:
    registry = (config or {}).get("registry") or {}
    return registry.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")


def client(config: dict[str, Any] | None = None) -> Any:
    uri = tracking_uri(config)
    if not uri:
        return None
    import logging

    import mlflow
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(mlflow_client: Any, system: str) -> str:
    found = mlflow_client.get_experiment_by_name(system)
    if found is not None:
        return found.experiment_id
    root = os.environ.get(ENV_ARTIFACT_ROOT)
    uri = tracking_uri() or ""
    if not root and uri.startswith("sqlite:///"):  # beside the database, never ./mlruns of whatever folder we run in
        root = str(Path(uri[len("sqlite:///") :]).parent / "mlartifacts")
    location = Path(root).resolve().joinpath(system).as_uri() if root else None
    return mlflow_client.create_experiment(system, artifact_location=location, tags={"mlcompile.system": system})


def version_with_alias(mlflow_client: Any, model: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(model, alias)
    except MlflowException:
        return None


def latest_version(mlflow_client: Any, model: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        versions = mlflow_client.search_model_versions(f"name='{model}'")
    except MlflowException:
        return None
    return max(versions, key=lambda v: int(v.version)) if versions else None


def download_model(mlflow_client: Any, version: Any, destination: Path) -> Path:
    import mlflow

    if not version.run_id:
        raise DataError(f"model version {version.name}/{version.version} has no run: it was not registered by mlcompile")
    path = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=MODEL_ARTIFACT, dst_path=str(destination), tracking_uri=tracking_uri())
    return Path(path)


def production_model(config: dict[str, Any], model: str, *, fallback_latest: bool) -> ServingModel | None:
    """The version with alias `production` (or, with `fallback_latest`, the newest version),
    downloaded to a temporary folder; None when the registry has none."""
    mlflow_client = client(config)
    if mlflow_client is None:
        return None
    version = version_with_alias(mlflow_client, model, PRODUCTION)
    alias: str | None = PRODUCTION
    reason = f"alias '{PRODUCTION}'"
    if version is None:
        if not fallback_latest:
            return None
        version = latest_version(mlflow_client, model)
        alias = None
        approval = (config.get("registry") or {}).get("approval", "manual")
        reason = f"no version has alias '{PRODUCTION}' yet" + (" (approval is manual: set the alias to approve a version)" if approval == "manual" else "") + "; using the newest version"
        if version is None:
            return None
    folder = download_model(mlflow_client, version, Path(tempfile.mkdtemp(prefix="mlcompile-model-")))
    return ServingModel(model, str(version.version), alias, reason, folder, version.run_id)


def _aliases(params: dict[str, Any]) -> list[str]:
    aliases = list(params.get("aliases") or [])
    if params.get("approval") == "auto" and PRODUCTION not in aliases:
        aliases.append(PRODUCTION)  # auto = approved on passing gates: this version serves
    return aliases


def _version_of_model(mlflow_client: Any, name: str, model_sha256: str) -> Any:
    from mlflow.exceptions import MlflowException

    if not model_sha256:
        return None
    try:
        found = mlflow_client.search_model_versions(f"name='{name}' and tag.`mlcompile.model_sha256` = '{model_sha256}'")
    except MlflowException:
        return None
    return max(found, key=lambda v: int(v.version)) if found else None


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = json.dumps(value) if not isinstance(value, str) else value


def register(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    import mlflow

    from mlcompile import __version__

    params = config["params"]
    mlflow_client = client(config)
    if mlflow_client is None:
        raise DataError("register: no model registry: set MLFLOW_TRACKING_URI (mlcompile run sets it to the workdir's SQLite file)")
    name = params["model"]
    evaluation = read_json(inputs["metrics"])
    metrics = evaluation.get("metrics", evaluation)
    lineage = config.get("lineage") or {}
    with model_folder(inputs["model"]) as trained, registrable(trained, config, inputs, metrics) as folder:
        meta = load_meta(folder)
        model_sha256 = fingerprint(str(folder)) or ""
        existing = _version_of_model(mlflow_client, name, model_sha256)
        if existing is not None:  # the same model (a resumed or repeated run): no new version
            aliases = _aliases(params)
            for alias in aliases:
                mlflow_client.set_registered_model_alias(name, alias, existing.version)
            print(f"{name} version {existing.version} is this very model (sha256 {model_sha256[:12]}): not registered again")
            return {"model": name, "version": str(existing.version), "aliases": aliases, "run_id": existing.run_id,
                    "approval": existing.tags.get("mlcompile.approval"), "tracking_uri": tracking_uri(config), "existing": True}  # fmt: skip
        data = meta.get("data") or {}
        lineage_tags = {
            "mlcompile.system": config.get("system") or "",
            "mlcompile.spec_sha256": config.get("spec_sha256") or "",
            "mlcompile.profile_sha256": lineage.get("profile_sha256") or "",
            "mlcompile.git_commit": lineage.get("git_commit") or "",
            "mlcompile.version": __version__,
            "mlcompile.pipeline_run": os.environ.get(ENV_PIPELINE_RUN, ""),
            "mlcompile.model_sha256": model_sha256,
            "mlcompile.data.train_sha256": data.get("train_sha256") or "",
            "mlcompile.data.events_until": str(data.get("events_until") or ""),
        }
        for source, info in sorted((data.get("sources") or {}).items()):
            lineage_tags[f"mlcompile.data.source.{source}.sha256"] = str(info.get("sha256") or "")
            lineage_tags[f"mlcompile.data.source.{source}.uri"] = str(info.get("uri") or "")
        experiment = experiment_id(mlflow_client, config.get("system") or name)
        run = mlflow_client.create_run(experiment, run_name=f"{name}-{os.environ.get(ENV_PIPELINE_RUN, 'run')}", tags=lineage_tags)
        run_id = run.info.run_id
        flat: dict[str, str] = {}
        _flatten("", {"estimator": meta.get("estimator") or meta.get("image"), **(meta.get("params") or meta.get("hyperparameters") or {})}, flat)
        for key, value in sorted(flat.items()):
            mlflow_client.log_param(run_id, key[:250], value[:6000])
        for key, value in sorted(metrics.items()):
            if isinstance(value, (int, float)):
                mlflow_client.log_metric(run_id, key, float(value))
        production = evaluation.get("production") or {}
        for key, value in sorted((production.get("metrics") or {}).items()):
            mlflow_client.log_metric(run_id, f"production_{key}", float(value))
        mlflow_client.log_artifacts(run_id, str(folder), MODEL_ARTIFACT)
        mlflow_client.log_dict(run_id, evaluation, "evaluation.json")
        source = f"runs:/{run_id}/{MODEL_ARTIFACT}"
        if meta.get("format") == "mlcompile.sklearn/1":
            source = _log_mlflow_flavor(mlflow_client, run_id, folder) or source
        mlflow_client.set_terminated(run_id)
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(name, tags=dict(params.get("tags") or {}), description=f"registered by mlcompile for {config.get('system')}")
    approval = params.get("approval", "manual")
    version_tags = {**lineage_tags, "mlcompile.approval": "approved" if approval == "auto" else "pending", **{k: str(v) for k, v in (params.get("tags") or {}).items()}}
    version = mlflow_client.create_model_version(name, source, run_id=run_id, tags=version_tags, description=json.dumps({"metrics": metrics}, sort_keys=True))
    aliases = _aliases(params)
    for alias in aliases:
        mlflow_client.set_registered_model_alias(name, alias, version.version)
    result = {"model": name, "version": str(version.version), "aliases": aliases, "run_id": run_id, "approval": version_tags["mlcompile.approval"], "tracking_uri": tracking_uri(config)}
    print(f"registered {name} version {version.version} (aliases: {', '.join(aliases) or '-'}; approval {version_tags['mlcompile.approval']})")
    return result


def _log_mlflow_flavor(mlflow_client: Any, run_id: str, folder: Path) -> str | None:
    """Also log the pipeline as an MLflow sklearn model, so `mlflow models serve` and any
    MLflow-aware tool can load the registered version, with the model's model.json (the
    runtime's server loads it from there). Best effort."""
    try:
        import joblib
        import mlflow.sklearn
        import sklearn

        model = joblib.load(folder / "model.joblib")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model"
            mlflow.sklearn.save_model(model, str(path), pip_requirements=[f"scikit-learn=={sklearn.__version__}"], serialization_format="cloudpickle")
            # the model's features, dtypes and keys: what `python -m mlcompile.runtime serve`
            # needs beside the pickle where the registered version is all it gets (Azure ML)
            (path / "model.json").write_bytes((folder / "model.json").read_bytes())
            mlflow_client.log_artifacts(run_id, str(path), "model")
        return f"runs:/{run_id}/model"
    except Exception as exc:  # noqa: BLE001 - the registry entry stands without the flavor
        print(f"warning: the MLflow sklearn flavor was not logged: {type(exc).__name__}: {exc}")
        return None


def deploy_online(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """Locally, deploying = moving the `production` alias to this pipeline run's version
    (what `mlcompile serve` and batch scoring use) and recording the endpoint on it."""
    params = config["params"]
    mlflow_client = client(config)
    if mlflow_client is None:
        raise DataError("deploy-online: no model registry (MLFLOW_TRACKING_URI)")
    name = params["model"]
    pipeline_run = os.environ.get(ENV_PIPELINE_RUN)
    versions = mlflow_client.search_model_versions(f"name='{name}'")
    mine = [v for v in versions if pipeline_run and v.tags.get("mlcompile.pipeline_run") == pipeline_run]
    target = max(mine or versions, key=lambda v: int(v.version), default=None)
    if target is None:
        raise DataError(f"deploy-online: model {name} has no version")
    mlflow_client.set_registered_model_alias(name, PRODUCTION, target.version)
    mlflow_client.set_model_version_tag(name, target.version, "mlcompile.endpoint", params["endpoint"])
    print(f"endpoint {params['endpoint']}: {name} version {target.version} is now '{PRODUCTION}' (serve it: mlcompile serve SPEC --target PROFILE)")
    return {"endpoint": params["endpoint"], "model": name, "version": str(target.version), "alias": PRODUCTION}
