"""The MLflow registry backend (tracking + model registry): local runs and Kubeflow.

A version is an MLflow run (params, metrics, the model folder as artifact
`mlcompile-model`, an MLflow sklearn flavor for `mlflow models serve`) plus a model version
with the lineage tags; aliases are MLflow's registered-model aliases."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from mlcompile.runtime.contract import ENV_PIPELINE_RUN
from mlcompile.runtime.io import DataError
from mlcompile.runtime.versions import NewVersion, Version

MODEL_ARTIFACT = "mlcompile-model"
ENV_ARTIFACT_ROOT = "MLCOMPILE_ARTIFACT_ROOT"


def tracking_uri(config: Any = None) -> str | None:
    from mlcompile.runtime.emulated_storage import service_url

    registry = (config or {}).get("registry") or {}
    uri = registry.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    return service_url(uri) if uri else None  # under the emulator: its local MLflow


def client(uri: str) -> Any:
    import mlflow
    from mlflow import MlflowClient

    from mlcompile.runtime.mlflow_headers import load_request_header_providers
    from mlcompile.runtime.mlflow_store import seed

    load_request_header_providers()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    seed(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _version(found: Any) -> Version:
    return Version(found.name, str(found.version), tuple(getattr(found, "aliases", None) or ()), dict(found.tags or {}), found.run_id)


class MlflowRegistry:
    kind = "mlflow"

    def __init__(self, uri: str) -> None:
        self.location = uri
        self.client = client(uri)

    def versions(self, model: str) -> list[Version]:
        from mlflow.exceptions import MlflowException

        try:
            return [_version(v) for v in self.client.search_model_versions(f"name='{model}'")]
        except MlflowException:
            return []

    def get(self, model: str, version: str) -> Version | None:
        from mlflow.exceptions import MlflowException

        try:
            return _version(self.client.get_model_version(model, version))
        except MlflowException:
            return None

    def with_alias(self, model: str, alias: str) -> Version | None:
        from mlflow.exceptions import MlflowException

        try:
            return _version(self.client.get_model_version_by_alias(model, alias))
        except MlflowException:
            return None

    def set_aliases(self, model: str, version: str, aliases: list[str]) -> None:
        for alias in aliases:
            self.client.set_registered_model_alias(model, alias, version)

    def set_tag(self, model: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(model, version, key, value)

    def download(self, version: Version, destination: Path) -> Path:
        import mlflow

        if not version.run_id:
            raise DataError(f"model version {version.model}/{version.version} has no run: it was not registered by mlcompile")
        path = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=MODEL_ARTIFACT, dst_path=str(destination), tracking_uri=self.location)
        return Path(path)

    def create(self, new: NewVersion) -> Version:
        from mlflow.exceptions import MlflowException

        mlflow_client, meta, folder = self.client, new.meta, new.folder
        params = new.config["params"]
        run_tags = {k: v for k, v in new.tags.items() if k.startswith("mlcompile.") and k != "mlcompile.approval"}
        experiment = self._experiment(new.config.get("system") or new.model)
        run = mlflow_client.create_run(experiment, run_name=f"{new.model}-{os.environ.get(ENV_PIPELINE_RUN, 'run')}", tags=run_tags)
        run_id = run.info.run_id
        flat: dict[str, str] = {}
        _flatten("", {"estimator": meta.get("estimator") or meta.get("image"), **(meta.get("params") or meta.get("hyperparameters") or {})}, flat)
        for key, value in sorted(flat.items()):
            mlflow_client.log_param(run_id, key[:250], value[:6000])
        for key, value in sorted(new.metrics.items()):
            if isinstance(value, (int, float)):
                mlflow_client.log_metric(run_id, key, float(value))
        production = new.evaluation.get("production") or {}
        for key, value in sorted((production.get("metrics") or {}).items()):
            mlflow_client.log_metric(run_id, f"production_{key}", float(value))
        mlflow_client.log_artifacts(run_id, str(folder), MODEL_ARTIFACT)
        mlflow_client.log_dict(run_id, new.evaluation, "evaluation.json")
        source = f"runs:/{run_id}/{MODEL_ARTIFACT}"
        if meta.get("format") == "mlcompile.sklearn/1":
            source = _log_mlflow_flavor(mlflow_client, run_id, folder) or source
        mlflow_client.set_terminated(run_id)
        try:
            mlflow_client.get_registered_model(new.model)
        except MlflowException:
            mlflow_client.create_registered_model(
                new.model, tags=dict(params.get("tags") or {}), description=f"registered by mlcompile for {new.config.get('system')}"
            )
        created = mlflow_client.create_model_version(
            new.model, source, run_id=run_id, tags=new.tags, description=json.dumps({"metrics": new.metrics}, sort_keys=True)
        )
        return _version(created)

    def _experiment(self, system: str) -> str:
        found = self.client.get_experiment_by_name(system)
        if found is not None:
            return found.experiment_id
        root = os.environ.get(ENV_ARTIFACT_ROOT)
        if not root and self.location.startswith("sqlite:///"):  # beside the database, never ./mlruns of whatever folder we run in
            root = str(Path(self.location[len("sqlite:///") :]).parent / "mlartifacts")
        location = Path(root).resolve().joinpath(system).as_uri() if root else None
        return self.client.create_experiment(system, artifact_location=location, tags={"mlcompile.system": system})


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = json.dumps(value) if not isinstance(value, str) else value


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
