"""`serve(session)`: the platform services of an emulated run. The steps find them through
their environment, a pipeline submitted through the platform's API runs in the emulator's
interpreter, and the run's summary learns what the services saw (the version registered, the
endpoint's traffic, the retraining run submitted)."""

# no `from __future__ import annotations`: kfp reads the component's annotations as types
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from emulate_services_support import wait_for  # noqa: E402

from mlcompile.emulate.containers import Images  # noqa: E402
from mlcompile.emulate.ir import EmulationContext  # noqa: E402
from mlcompile.emulate.services import VERTEX_ENDPOINT_ENV, serve  # noqa: E402

pytestmark = pytest.mark.emulate
aiplatform_v1 = pytest.importorskip("google.cloud.aiplatform_v1")
from google.auth.credentials import AnonymousCredentials  # noqa: E402

PARENT = "projects/acme/locations/us-central1"


def session(tmp_path: Path, platform: str = "vertex", **settings: Any) -> Any:
    """What the emulator's session gives the services (see mlcompile.emulate.system.Session)."""
    plan = SimpleNamespace(registry=SimpleNamespace(model="churn"), online=SimpleNamespace(name="scorer"), platform_settings=settings)
    state = SimpleNamespace(
        platform=platform, stand_ins="vertex" if platform == "vertex" else "kubernetes", plan=plan, images=Images(runtime="runtime", commands={"python:3.11": ["python"]}), root=tmp_path / "storage", work=tmp_path, env={}, hosts={}, facts={}, results=[],
        config=SimpleNamespace(parameters={}, secrets={}), log=lambda message: None,
    )  # fmt: skip
    state.context = lambda: EmulationContext(state.images, state.root, tmp_path / "runs", dict(state.env))
    return state


def retraining_ir(tmp_path: Path) -> dict[str, Any]:
    import yaml
    from kfp import compiler, dsl

    @dsl.container_component
    def train(rows: int):
        return dsl.ContainerSpec(image="python:3.11", command=["python", "-c", "import sys; assert int(sys.argv[1]) > 0"], args=[rows])

    @dsl.pipeline(name="churn-training")
    def training(rows: int = 10):
        train(rows=rows)

    path = tmp_path / "training.yaml"
    compiler.Compiler().compile(training, str(path))
    return yaml.safe_load(path.read_text())


def test_the_steps_reach_the_services_and_the_summary_learns_what_they_saw(tmp_path: Path) -> None:
    emulated = session(tmp_path)
    with serve(emulated) as services:
        options = {"client_options": {"api_endpoint": emulated.env[VERTEX_ENDPOINT_ENV]}, "credentials": AnonymousCredentials(), "transport": "rest"}
        assert services.execution.env[VERTEX_ENDPOINT_ENV] == services.vertex.url  # every container gets it
        models = aiplatform_v1.ModelServiceClient(**options)
        uploaded = models.upload_model(
            request={"parent": PARENT, "model_id": "churn", "model": {"display_name": "churn", "version_aliases": ["candidate"]}}
        ).result()
        endpoints = aiplatform_v1.EndpointServiceClient(**options)
        endpoint = endpoints.create_endpoint(parent=PARENT, endpoint={"display_name": "scorer"}, endpoint_id="scorer").result()
        endpoints.deploy_model(
            endpoint=endpoint.name,
            deployed_model={"model": f"{uploaded.model}@candidate", "automatic_resources": {"min_replica_count": 1}},
            traffic_split={"0": 100},
        ).result()
        pipelines = aiplatform_v1.PipelineServiceClient(**options)
        body = {"display_name": "churn-training", "pipeline_spec": retraining_ir(tmp_path), "runtime_config": {"parameter_values": {"rows": 0}}}
        job = pipelines.create_pipeline_job(parent=PARENT, pipeline_job=body, pipeline_job_id="retrain-1")
        ended = wait_for(lambda: pipelines.get_pipeline_job(name=job.name), lambda j: j.state.name.endswith(("SUCCEEDED", "FAILED")))
    assert ended.state.name == "PIPELINE_STATE_FAILED" and "task train failed" in ended.error.message
    (result,) = emulated.results
    assert (result.name, result.status) == ("churn-training", "FAILED")
    assert "AssertionError" in result.tasks["train"].log.read_text()  # rows=0 reached the container
    assert emulated.facts["registered"] == {"model": "churn", "version": "1", "registry": "vertex", "aliases": ["candidate", "default"]}
    assert emulated.facts["deployed"] == {"endpoint": "scorer", "version": "1", "traffic": {"1": 100}}
    assert emulated.facts["retraining"] == {"submitted": "retrain-1", "status": "failed"}


def test_a_kubeflow_run_gets_the_kubernetes_and_kfp_apis(tmp_path: Path) -> None:
    import kfp
    import kubernetes

    emulated = session(tmp_path, "kubeflow", host="http://ml-pipeline.kubeflow:8888", namespace="ml")
    with serve(emulated) as services:
        assert emulated.hosts == {"ml-pipeline.kubeflow:8888": services.kfp.url.removeprefix("http://")}  # as cluster DNS would
        objects = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(config_file=emulated.env["KUBECONFIG"]))

        def inference_service(version: str, canary: int | None) -> dict[str, Any]:
            predictor: dict[str, Any] = {
                "containers": [{"name": "kserve-container", "image": "runtime", "env": [{"name": "MLCOMPILE_MODEL_VERSION", "value": version}]}]
            }
            predictor.update({"canaryTrafficPercent": canary} if canary is not None else {})
            return {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": "scorer", "namespace": "ml"},
                "spec": {"predictor": predictor},
            }

        objects.create_namespaced_custom_object("serving.kserve.io", "v1beta1", "ml", "inferenceservices", inference_service("1", None))
        objects.replace_namespaced_custom_object("serving.kserve.io", "v1beta1", "ml", "inferenceservices", "scorer", inference_service("2", 10))
        retraining_ir(tmp_path)
        submitted = kfp.Client(host=services.kfp.url).create_run_from_pipeline_package(
            str(tmp_path / "training.yaml"), arguments={"rows": 3}, run_name="retrain"
        )
        assert services.wait(60)
    assert emulated.facts["deployed"] == {"endpoint": "scorer", "version": "2", "traffic": {"2": 10, "1": 90}}  # the approved version takes the canary share
    assert emulated.facts["retraining"] == {"submitted": submitted.run_id, "status": "succeeded"}
    assert [(r.name, r.status) for r in emulated.results] == [("churn-training", "SUCCEEDED")]


def test_a_vertex_run_starts_where_deploy_leaves_the_platform(tmp_path: Path) -> None:
    from mlcompile.build import compile_system, select_profiles, write_builds

    root = Path(__file__).resolve().parents[1]
    spec = str(root / "examples" / "churn" / "mlcompile.yaml")
    compiled = compile_system(spec, select_profiles(spec, [str(root / "targets" / "gcp-prod.yaml")], "run"), render=True, git_commit=None).results[0]
    (build,) = write_builds([compiled], tmp_path / "build")
    emulated = session(tmp_path, **compiled.plan.platform_settings)
    emulated.plan.training = compiled.plan.training
    emulated.build, emulated.system = build, compiled.plan.system
    emulated.run_pipeline_file = lambda path, parameters=None: SimpleNamespace(status="SUCCEEDED")  # the emulator's own run
    with serve(emulated) as services:
        endpoints = aiplatform_v1.EndpointServiceClient(
            client_options={"api_endpoint": services.vertex.url}, credentials=AnonymousCredentials(), transport="rest"
        )
        parent = f"projects/{compiled.plan.platform_settings['project']}/locations/{compiled.plan.platform_settings['region']}"
        assert endpoints.get_endpoint(name=f"{parent}/endpoints/churn-scorer").display_name == "churn-scorer"  # the deploy step deploys to it
        (training,) = services.vertex.pipeline_jobs.values()  # deploy's training job: the emulator's first training run
        assert training["state"] == "PIPELINE_STATE_PENDING"
        emulated.run_pipeline_file(build / "pipelines" / f"{compiled.plan.training.name}.yaml")
        assert training["state"] == "PIPELINE_STATE_SUCCEEDED"
        assert "retraining" not in emulated.facts  # nothing was submitted through the API
