"""Where each step of an azure-prod build runs: only training (the train step, the sweep's
trials) gets the accelerator machines the spec asks for; every other step — data
validation, feature extraction, evaluation, gates, registration, monitoring, rollout,
retraining triggers, the batch deployment's scoring — runs on the profile's CPU cluster (or,
batch scoring in a pipeline job, on the serverless CPU size of deployment.batch.resources).
Read from the golden builds of every example, which tests/test_golden.py keeps equal to what
the build writes."""

from __future__ import annotations

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"
TRAINING = {"train", "tune"}
BUILDS = sorted(p.parent for p in GOLDEN.glob("*/azure-prod/pipelines"))


def profile_cluster() -> str:
    profile = yaml.safe_load((ROOT / "targets" / "azure-prod.yaml").read_text())
    return f"azureml:{profile['azureml']['compute']}"


def is_gpu_size(instance_type: str | None) -> bool:
    # Azure's accelerated VM families are the N series (NC, ND, NV, NG)
    return bool(instance_type) and instance_type.lower().startswith("standard_n")


@pytest.mark.parametrize("build", BUILDS, ids=lambda p: p.parent.name)
def test_every_step_but_training_runs_on_the_cpu_cluster(build: Path) -> None:
    cluster = profile_cluster()
    seen = 0
    for path in sorted([*build.glob("pipelines/*.yml"), *build.glob("components/*.yml")]):
        for name, job in (yaml.safe_load(path.read_text()).get("jobs") or {}).items():
            if name in TRAINING:
                continue
            seen += 1
            instance_type = (job.get("resources") or {}).get("instance_type")
            assert not is_gpu_size(instance_type), f"{path.name}: {name} runs on {instance_type}"
            if job.get("compute") is not None or instance_type is None:
                assert job.get("compute") == cluster, f"{path.name}: {name} runs on {job.get('compute')}, not the CPU cluster {cluster}"
    assert seen


def test_the_profile_cluster_is_the_cpu_one() -> None:
    assert "cpu" in profile_cluster()
    # the GPU example does ask for accelerators, for its training trials only
    tune = yaml.safe_load((GOLDEN / "ranker-gpu" / "azure-prod" / "pipelines" / "search-ranker-training.yml").read_text())["jobs"]["tune"]
    assert is_gpu_size(tune["resources"]["instance_type"])
