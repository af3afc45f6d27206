"""The life of an emulated system after `mlcompile deploy`, done through the platform's own
APIs as a person and the platform would: the InferenceService deploy applies (Kubeflow), the
approval of a registered version (the `production` alias: MLflow's client against the emulated
MLflow, or Vertex AI's ModelServiceClient.mergeVersionAliases against the emulated API), the
deploy pipeline a person starts after approving, and the question every scheduled batch or
monitoring run asks first: is there an approved version at all?"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

PRODUCTION = "production"  # the alias that approves a version (runtime.versions.PRODUCTION)
KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
APPROVER = "emulator"


def apply_inference_service(build: Path, kubeconfig: Path) -> None:
    """Apply serving/inference-service.yaml as `mlcompile deploy` does (kubectl apply: create,
    or replace what is there), through the Kubernetes API."""
    path = build / "serving" / "inference-service.yaml"
    if not path.is_file():
        return
    import yaml
    from kubernetes import client as k8s
    from kubernetes import config as kube_config

    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    api = k8s.CustomObjectsApi(kube_config.new_client_from_config(config_file=str(kubeconfig)))
    group, version, plural = KSERVE
    namespace = body["metadata"].get("namespace", "default")
    try:
        api.create_namespaced_custom_object(group, version, namespace, plural, body)
    except k8s.ApiException as exc:
        if exc.status != 409:
            raise
        current = api.get_namespaced_custom_object(group, version, namespace, plural, body["metadata"]["name"])
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        api.replace_namespaced_custom_object(group, version, namespace, plural, body["metadata"]["name"], body)


class Registry:
    """The model registry of an emulated run, as a person reaches it: MLflow's client (the
    emulated MLflow server) or Vertex AI's ModelServiceClient (the emulated Vertex API)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.model = session.plan.registry.model
        settings = session.plan.platform_settings
        self.vertex = (settings.get("registry") or {}).get("kind") != "mlflow" and getattr(session, "stand_ins", None) == "vertex"
        self.parent = f"projects/{settings.get('project')}/locations/{settings.get('region')}"

    def _mlflow(self) -> Any:
        from mlflow.tracking import MlflowClient

        from mlcompile.runtime.mlflow_headers import load_request_header_providers

        load_request_header_providers()
        local = self.session.facts["mlflow"]["local"]
        # the registry too: left to itself it follows MLFLOW_TRACKING_URI of whoever started us
        return MlflowClient(tracking_uri=local, registry_uri=local)

    def _vertex(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient

        from mlcompile.runtime.contract import ENV_VERTEX_API_ENDPOINT

        url = self.session.env[ENV_VERTEX_API_ENDPOINT]
        return ModelServiceClient(client_options={"api_endpoint": url}, transport="rest", credentials=AnonymousCredentials())

    def newest(self) -> str | None:
        """The newest registered version (None: none, or no registry the emulator can reach)."""
        if self.vertex:
            from google.api_core import exceptions

            try:
                versions = self._vertex().list_model_versions(name=f"{self.parent}/models/{self.model}")
                return str(max((int(v.version_id) for v in versions), default=0) or "") or None
            except exceptions.NotFound:
                return None
        if "mlflow" not in self.session.facts:
            return None
        versions = self._mlflow().search_model_versions(f"name='{self.model}'")
        return str(max(int(v.version) for v in versions)) if versions else None

    def approved(self) -> str | None:
        """The version with the `production` alias, if a person approved one."""
        if self.vertex:
            from google.api_core import exceptions

            try:
                return str(self._vertex().get_model(name=f"{self.parent}/models/{self.model}@{PRODUCTION}").version_id)
            except exceptions.NotFound:
                return None
        if "mlflow" not in self.session.facts:
            return None
        from mlflow.exceptions import MlflowException

        try:
            return str(self._mlflow().get_model_version_by_alias(self.model, PRODUCTION).version)
        except MlflowException:
            return None

    def approve(self, version: str) -> None:
        """Give the version the `production` alias, as a person approving it would."""
        if self.vertex:
            self._vertex().merge_version_aliases(name=f"{self.parent}/models/{self.model}@{version}", version_aliases=[PRODUCTION])
        else:
            self._mlflow().set_registered_model_alias(self.model, PRODUCTION, version)


def train_and_approve(session: Any, training: Path, runs: int, approve: bool, rerun: Callable[[], None] = lambda: None, registry: Any = None) -> None:
    """Run the training pipeline `runs` times (`rerun` first stages the data of the second
    and later runs). Under `approval: manual`, after each run that
    registered a new version: approve it (unless `approve` is off) and run the deploy
    pipeline, as a person does; the summary records each approval (facts `approved`)."""
    registry = registry or Registry(session)
    manual = session.plan.registry.approval == "manual"
    for run in range(runs):
        if run == 1:
            rerun()
        before = registry.newest() if manual else None
        session.run_pipeline_file(training)
        version = registry.newest() if manual else None
        if version is None or version == before:
            continue  # the gate kept it out, or the same model again: nothing new to approve
        if not approve:
            session.log(f"{registry.model} version {version}: left pending approval (--no-approve)")
            continue
        registry.approve(version)
        session.facts["approved"] = {"version": version, "by": APPROVER}
        session.log(f"{registry.model} version {version}: approved (alias '{PRODUCTION}')")
        deploy = session.pipeline_file("deploy")
        if deploy is not None:
            session.run_pipeline_file(deploy)


def unapproved_reason(session: Any, registry: Any = None) -> str | None:
    """Why a batch or monitoring run would fail at once (None: it can run): under manual
    approval, no version has the `production` alias yet."""
    if session.plan.registry.approval != "manual":
        return None
    registry = registry or Registry(session)
    if registry.approved() is not None:
        return None
    return f"no approved version of {registry.model}: approve one by giving it the alias '{PRODUCTION}'"
