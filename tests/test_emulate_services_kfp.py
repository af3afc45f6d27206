"""The emulated Kubeflow Pipelines API, driven by `kfp.Client`: a run created from a pipeline
package, or from an uploaded pipeline version, is executed by the emulator's pipeline
interpreter and reports its state as KFP does."""

# no `from __future__ import annotations`: kfp reads the component's annotations as types
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from emulate_services_support import emulation, wait_for  # noqa: E402

from mlcompile.emulate.services.execution import PipelineRun  # noqa: E402
from mlcompile.emulate.services.kfp import KfpService  # noqa: E402

pytestmark = pytest.mark.emulate
kfp = pytest.importorskip("kfp")


def package(tmp_path: Path) -> Path:
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def train(rows: int) -> int:
        return rows

    @dsl.pipeline(name="churn-retraining")
    def retraining(rows: int = 10) -> None:
        train(rows=rows)

    path = tmp_path / "retraining.yaml"
    compiler.Compiler().compile(retraining, str(path))
    return path


def test_runs_created_through_the_kfp_client_are_executed(tmp_path: Path) -> None:
    ran: list[tuple[str, dict[str, Any]]] = []

    def run_pipeline(run: PipelineRun) -> str | None:
        ran.append((run.ir["pipelineInfo"]["name"], run.parameters))
        return None if run.parameters["rows"] > 0 else "step train failed: no rows"

    pipeline_file = package(tmp_path)
    with KfpService(emulation(tmp_path, run_pipeline=run_pipeline)) as api:
        client = kfp.Client(host=api.host)
        from_package = client.create_run_from_pipeline_package(str(pipeline_file), arguments={"rows": 5}, run_name="retrain-now")
        uploaded = client.upload_pipeline(str(pipeline_file), pipeline_name="churn-retraining")
        version = client.list_pipeline_versions(uploaded.pipeline_id).pipeline_versions[0]
        experiment = client.create_experiment("retraining")
        from_version = client.run_pipeline(
            experiment.experiment_id, "retrain-empty", params={"rows": 0}, pipeline_id=uploaded.pipeline_id, version_id=version.pipeline_version_id
        )
        states = [wait_for(lambda r=r: client.get_run(r.run_id), lambda run: run.state in ("SUCCEEDED", "FAILED")) for r in (from_package, from_version)]
    assert [s.state for s in states] == ["SUCCEEDED", "FAILED"]
    assert states[1].error.message == "step train failed: no rows"
    assert sorted(ran, key=lambda r: r[1]["rows"]) == [("churn-retraining", {"rows": 0}), ("churn-retraining", {"rows": 5})]
