"""The settings of a `platform: vertex` profile (its `vertex:` block)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mlcompile.spec.model_base import SpecModel


class VertexFeatureStoreSettings(SpecModel):
    """The Vertex AI Feature Store online store that serves the spec's online views."""

    online_store_id: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,59}$",
        description="FeatureOnlineStore id; default: the system name with '_' for '-' (one store per system)",
    )
    storage: Literal["bigtable", "optimized"] = Field(
        default="bigtable",
        description="bigtable: autoscaled Bigtable nodes, served through the regional API; optimized: Vertex AI's optimized store on its own public endpoint",
    )
    min_nodes: int = Field(default=1, ge=1, description="bigtable: fewest nodes autoscaling keeps")
    max_nodes: int = Field(default=3, ge=1, description="bigtable: most nodes autoscaling adds")
    cpu_utilization_target: int = Field(default=50, ge=10, le=80, description="bigtable: node CPU utilisation (percent) autoscaling aims for")

    @model_validator(mode="after")
    def _node_range(self) -> VertexFeatureStoreSettings:
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"max_nodes ({self.max_nodes}) is below min_nodes ({self.min_nodes})")
        return self


class VertexSettings(SpecModel):
    project: str = Field(description="Google Cloud project id", pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", examples=["acme-ml"])
    region: str = Field(
        description="Google Cloud region pipelines, models and endpoints are created in",
        pattern=r"^[a-z]+-[a-z]+[0-9]+$",
        examples=["us-central1", "europe-west4"],
    )
    pipeline_root: str = Field(description="Cloud Storage path where pipeline artifacts are written", pattern=r"^gs://.+$", examples=["gs://acme-ml/pipelines"])
    service_account: str = Field(
        description="service account the pipelines run as", pattern=r"^[^@\s]+@[^@\s]+$", examples=["pipelines@acme-ml.iam.gserviceaccount.com"]
    )
    network: str | None = Field(default=None, description="VPC network to peer jobs with (projects/<number>/global/networks/<name>)")
    feature_store: VertexFeatureStoreSettings = Field(
        default_factory=VertexFeatureStoreSettings, description="the online store of the spec's online feature views"
    )
