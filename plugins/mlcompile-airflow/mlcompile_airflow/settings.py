"""The profile's `settings:` block for platform `airflow`."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MlflowRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["mlflow"]
    uri: str = Field(description="the MLflow tracking server the registry steps use")


class AirflowSettings(BaseModel):
    """Where the DAGs' pods run and where their steps keep artifacts."""

    model_config = ConfigDict(extra="forbid")

    artifact_root: str = Field(
        pattern=r"^(gs|s3|abfss)://\S+$", description="object-store folder the steps write artifacts under, one folder per DAG run (gs://, s3://, abfss://)"
    )
    namespace: str = Field("default", description="Kubernetes namespace the pods run in")
    kubernetes_conn_id: str = Field("kubernetes_default", description="the Airflow connection to the cluster")
    service_account: str | None = Field(None, description="Kubernetes service account of the pods (their cloud identity)")
    registry: MlflowRegistry | None = Field(None, description="the model registry; required when the training pipeline registers")
    smtp_conn_id: str = Field("smtp_default", description="the Airflow connection email alerts are sent through")
    # the smtp provider (3.x) refuses to send without a sender: this one, or the connection's
    from_email: str | None = Field(None, description="sender of the email alerts; when unset, the smtp connection must define one")
    # read by mlcompile's lowering with the Kubernetes section of its machine catalog: the
    # node selectors and tolerations that put an accelerator's pods on its nodes
    cluster: Literal["gke", "eks", "aks", "generic"] = Field("generic", description="cluster flavour: decides GPU/TPU node selectors and tolerations")
    start_date: date = Field(date(2024, 1, 1), description="the DAGs' start_date; runs before it are never scheduled (catchup is off)")
