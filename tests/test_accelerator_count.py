"""One accelerator count per resource: the catalog's. When the catalog rounds a request up
(2 × tpu-v5e on GKE is a 2x2 slice of 4 chips; 3 × T4 on Vertex AI is an N1 machine with 4),
every file the build writes asks for the rounded count, so the pod or machine it describes
can be scheduled: the KFP task's accelerator limit, the KServe container's limit, the
Vertex AI machine spec, the SageMaker and Azure ML instance types (whose GPUs are the
count), cost.json and the plan view `mlcompile diff` reviews. Every consumer reads the one
resolved accelerator of the plan (`Resources.accelerator`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from requires import require

require("kfp")

from build_support import ROOT  # noqa: E402

from mlcompile.build import compile_system, resolve_profiles  # noqa: E402
from mlcompile.diff.engine import plan_resources  # noqa: E402


def _build(tmp_path: Path, profile_name: str, resources: dict[str, Any]) -> tuple[Any, dict[str, bytes]]:
    spec = yaml.safe_load((ROOT / "examples/churn/mlcompile.yaml").read_text())
    profile = yaml.safe_load((ROOT / f"targets/{profile_name}.yaml").read_text())
    spec["overrides"] = {profile_name: spec["overrides"][profile_name]}
    spec["training"]["resources"] = dict(resources)
    spec["deployment"]["online"]["resources"] = {**resources, "timeout": "2s"}
    spec["deployment"]["online"]["autoscaling"] = {"metric": "requests_per_replica", "target": 5}
    accelerator = resources["accelerator"]["type"]
    profile["policy"]["allowed_accelerators"] = sorted({*profile["policy"]["allowed_accelerators"], accelerator})
    (tmp_path / "targets").mkdir()
    (tmp_path / "mlcompile.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (tmp_path / f"targets/{profile_name}.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    compilation = compile_system(
        str(tmp_path / "mlcompile.yaml"), resolve_profiles(str(tmp_path / "mlcompile.yaml"), [str(tmp_path / f"targets/{profile_name}.yaml")]), render=True
    )
    (result,) = compilation.results
    return result.plan, {f.path: f.content for f in result.files}


def _cost_counts(files: dict[str, bytes]) -> set[int]:
    cost = json.loads(files["cost.json"])
    counts = {s["accelerator_count"] for p in cost["pipelines"] for s in p["steps"] if s["accelerator"]}
    counts |= {e["accelerator_count"] for e in cost.get("endpoints", []) if e.get("accelerator")}
    return counts


def test_two_tpu_v5e_chips_on_gke_ask_for_the_four_chips_of_the_2x2_slice_everywhere(tmp_path: Path) -> None:
    plan, files = _build(tmp_path, "kfp-gke", {"cpu": 4, "memory": "16Gi", "timeout": "1h", "accelerator": {"type": "tpu-v5e", "count": 2}})

    pipeline = [d for d in yaml.safe_load_all(files["pipelines/churn-prediction-training.yaml"]) if d]
    train = pipeline[0]["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert (train["accelerator"]["resourceType"], train["accelerator"]["resourceCount"]) == ("google.com/tpu", "4")
    selector = pipeline[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]["nodeSelector"]["labels"]
    assert selector["cloud.google.com/gke-tpu-topology"] == "2x2"

    predictor = yaml.safe_load(files["serving/inference-service.yaml"])["spec"]["predictor"]
    assert predictor["containers"][0]["resources"]["limits"]["google.com/tpu"] == "4"
    assert predictor["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "2x2"

    assert _cost_counts(files) == {4}
    views = plan_resources(plan)
    assert views["step churn-prediction-training/train"][0]["accelerator"] == "4× tpu-v5e"
    assert views["endpoint churn-scorer"][0]["accelerator"] == "4× tpu-v5e"


def test_three_t4_on_vertex_become_the_n1_machine_with_four_everywhere(tmp_path: Path) -> None:
    pytest.importorskip("google.cloud.aiplatform")
    plan, files = _build(tmp_path, "gcp-prod", {"cpu": 4, "memory": "15Gi", "timeout": "1h", "accelerator": {"type": "nvidia-t4", "count": 3}})

    job = json.loads(files["vertex/jobs/train-custom-job.json"])
    machine = job["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]
    assert (machine["machineType"], machine["acceleratorType"], machine["acceleratorCount"]) == ("n1-standard-4", "NVIDIA_TESLA_T4", 4)
    deployed = json.loads(files["vertex/deploy-model.json"])["deployedModel"]["dedicatedResources"]["machineSpec"]
    assert deployed["acceleratorCount"] == 4

    assert _cost_counts(files) == {4}
    assert plan_resources(plan)["step churn-prediction-training/train"][0]["accelerator"] == "4× nvidia-t4"


def _resolved(plan: Any) -> set[tuple[str, int, str | None]]:
    found = [plan.training.step("train").resources.accelerator, plan.online.resources.accelerator]
    return {(a.type, a.count, a.machine) for a in found}


def test_three_t4_on_sagemaker_become_the_g4dn_12xlarge_with_four_everywhere(tmp_path: Path) -> None:
    pytest.importorskip("sagemaker")
    plan, files = _build(tmp_path, "aws-prod", {"cpu": 4, "memory": "15Gi", "timeout": "1h", "accelerator": {"type": "nvidia-t4", "count": 3}})

    assert _resolved(plan) == {("nvidia-t4", 4, "ml.g4dn.12xlarge")}
    definition = json.loads(files["pipelines/churn-prediction-training.definition.json"])
    train = next(s for s in definition["Steps"] if s["Name"] == "train")
    assert train["Arguments"]["ResourceConfig"]["InstanceType"] == "ml.g4dn.12xlarge"
    variant = json.loads(files["serving/endpoint-config.json"])["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.g4dn.12xlarge"

    assert _cost_counts(files) == {4}
    assert plan_resources(plan)["step churn-prediction-training/train"][0]["accelerator"] == "4× nvidia-t4"


def test_three_t4_on_azure_ml_become_the_nc64as_t4_v3_with_four_everywhere(tmp_path: Path) -> None:
    pytest.importorskip("azure.ai.ml")
    plan, files = _build(tmp_path, "azure-prod", {"cpu": 4, "memory": "15Gi", "timeout": "1h", "accelerator": {"type": "nvidia-t4", "count": 3}})

    assert _resolved(plan) == {("nvidia-t4", 4, "Standard_NC64as_T4_v3")}
    job = yaml.safe_load(files["pipelines/churn-prediction-training.yml"])
    assert job["jobs"]["train"]["resources"]["instance_type"] == "Standard_NC64as_T4_v3"
    assert yaml.safe_load(files["endpoints/churn-scorer-blue.yml"])["instance_type"] == "Standard_NC64as_T4_v3"

    assert _cost_counts(files) == {4}
    assert plan_resources(plan)["endpoint churn-scorer"][0]["accelerator"] == "4× nvidia-t4"
