"""The Azure ML pipeline job interpreter of the emulator, one behaviour at a time: binding
substitution in commands (optional blocks included), folder and file outputs, the jobs graph
from `${{parent.jobs…}}` bindings, sweep sampling and ranking by MLflow-logged metrics, and
the PyTorch distribution's environment. Steps are small bash commands; MLflow is the emulator's tracking server."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlcompile.emulate.azureml import sweep
from mlcompile.emulate.azureml.bindings import BindingError, substitute, upstream
from mlcompile.emulate.azureml.jobs import run_job
from mlcompile.emulate.azureml.steps import JobContext, argv_of, distributed_env
from mlcompile.emulate.azureml.workspace import AzureWorkspace
from mlcompile.emulate.containers import Images
from mlcompile.emulate.ir import FAILED, NOT_TRIGGERED, SKIPPED, SUCCEEDED
from mlcompile.emulate.services.azure_arm import ArmStandIn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")

IMAGE = "example.azurecr.io/steps:1"


# -- substitution ---------------------------------------------------------------------------
DECLARED = {
    "inputs": {"data": {"type": "uri_folder"}, "rate": {"type": "number"}, "extra": {"type": "string", "optional": True}},
    "outputs": {"model": {"type": "uri_folder"}},
}


def test_placeholders_become_paths_and_values() -> None:
    line = substitute(
        "train --data ${{inputs.data}} --rate ${{ inputs.rate }} --out ${{outputs.model}}", {"data": "/mnt/d", "rate": "0.1"}, {"model": "/mnt/m"}, DECLARED
    )
    assert line == "train --data /mnt/d --rate 0.1 --out /mnt/m"


def test_an_optional_block_disappears_without_its_input_and_stays_with_it() -> None:
    command = "train --data ${{inputs.data}} $[[--extra ${{inputs.extra}}]] --out ${{outputs.model}}"
    assert substitute(command, {"data": "/d"}, {"model": "/m"}, DECLARED) == "train --data /d  --out /m"
    assert substitute(command, {"data": "/d", "extra": "x"}, {"model": "/m"}, DECLARED) == "train --data /d --extra x --out /m"


def test_a_placeholder_the_component_does_not_declare_fails_validation() -> None:
    with pytest.raises(BindingError, match="does not declare"):
        substitute("train ${{inputs.nope}}", {}, {}, DECLARED)
    with pytest.raises(BindingError, match="required"):
        substitute("train ${{inputs.data}}", {}, {}, DECLARED)


def test_the_jobs_graph_comes_from_parent_jobs_bindings() -> None:
    node = {
        "inputs": {
            "a": {"path": "${{parent.jobs.prep.outputs.train}}"},
            "b": "${{parent.jobs.split.outputs.test}}",
            "c": 3,
            "d": {"path": "${{parent.inputs.raw}}"},
        }
    }
    assert upstream(node) == {"prep", "split"}


def test_a_plain_command_runs_as_its_own_argv_and_shell_syntax_under_bash() -> None:
    assert argv_of("""python -m mlcompile.runtime gate --config '{"a": "$x; y"}'""") == [
        "python",
        "-m",
        "mlcompile.runtime",
        "gate",
        "--config",
        '{"a": "$x; y"}',
    ]
    assert argv_of("A=1 python train.py")[:2] == ["bash", "-c"]
    assert argv_of("if true; then echo; fi")[:2] == ["bash", "-c"]
    assert argv_of('echo "$HOME"')[:2] == ["bash", "-c"]


# -- distribution ---------------------------------------------------------------------------
def test_pytorch_distribution_gives_each_process_its_rank() -> None:
    envs = distributed_env({"type": "pytorch", "process_count_per_instance": 2}, instance_count=2)
    assert [(e["NODE_RANK"], e["RANK"], e["LOCAL_RANK"]) for e in envs] == [("0", "0", "0"), ("0", "1", "1"), ("1", "2", "0"), ("1", "3", "1")]
    assert {e["WORLD_SIZE"] for e in envs} == {"4"} and len({e["MASTER_PORT"] for e in envs}) == 1
    assert {e["MASTER_ADDR"] for e in envs} == {"127.0.0.1"}
    assert distributed_env(None, 1) == [{}]
    with pytest.raises(BindingError, match="mpi"):
        distributed_env({"type": "mpi"}, 2)


# -- sweep ----------------------------------------------------------------------------------
SPACE = {
    "lr": {"type": "loguniform", "min_value": -4.6, "max_value": -1.2},
    "leaves": {"type": "quniform", "min_value": 7, "max_value": 31, "q": 1},
    "kind": {"type": "choice", "values": ["a", "b"]},
}


def test_random_sampling_stays_in_the_space_and_keeps_hyperdrive_types() -> None:
    trials = sweep.sample(SPACE, "random", 20, seed=1)
    assert len(trials) == 20
    for values in trials:
        assert 0.01 <= values["lr"] <= 0.302
        assert isinstance(values["leaves"], float) and values["leaves"].is_integer() and 7 <= values["leaves"] <= 31
        assert values["kind"] in ("a", "b")
    assert sweep.sample(SPACE, "random", 5, seed=1) == trials[:5], "one seed, one sequence"


def test_grid_sampling_takes_choices_only() -> None:
    assert sweep.sample({"a": {"type": "choice", "values": [1, 2]}, "b": {"type": "choice", "values": ["x"]}}, "grid", 10) == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "x"},
    ]
    with pytest.raises(sweep.SearchSpaceError):
        sweep.sample(SPACE, "grid", 4)


def test_bandit_policy_cancels_a_trial_outside_the_slack_and_the_best_trial_wins() -> None:
    done = [sweep.Trial(0, {}, "completed", 0.9, [0.9]), sweep.Trial(1, {}, "completed", 0.5, [0.5])]
    late = sweep.Trial(2, {}, "completed", 0.6, [0.6])
    assert sweep.terminated(late, done, {"type": "bandit", "slack_amount": 0.1}, "maximize").startswith("bandit")
    assert sweep.terminated(late, done, {"type": "bandit", "slack_amount": 0.5}, "maximize") == ""
    assert sweep.terminated(late, done, {"type": "bandit", "slack_amount": 0.1, "delay_evaluation": 5}, "maximize") == ""
    assert sweep.best_trial(done, "maximize").number == 0 and sweep.best_trial(done, "minimize").number == 1


# -- pipelines ------------------------------------------------------------------------------
# the tests below share the emulator's MLflow server (~15 s to start under load)
@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The emulator's MLflow tracking server, one for the module."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcompile.emulate.mlflow_server", str(tmp_path_factory.mktemp("mlflow"))], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    assert line.startswith("port "), line
    yield f"http://127.0.0.1:{line.split()[1]}"
    process.terminate()
    process.wait(10)


@pytest.fixture
def context(tmp_path: Path, tracking: str) -> JobContext:
    arm = ArmStandIn()
    workspace = AzureWorkspace("sub", "rg", "ws", tmp_path / "root", tracking, arm)
    return JobContext(Images(IMAGE), tmp_path / "root", tmp_path / "runs", workspace)


def component(command: str, inputs: dict | None = None, outputs: dict | None = None, name: str = "step") -> dict:
    return {"command": command, "display_name": name, "environment": {"image": IMAGE}, "inputs": inputs or {}, "outputs": outputs or {}, "type": "command"}


@pytest.mark.slow
def test_outputs_are_ready_before_the_command_and_flow_to_the_next_job(context: JobContext) -> None:
    job = {
        "type": "pipeline", "experiment_name": "unit", "display_name": "flow",
        "outputs": {"shared": {"type": "uri_folder", "name": "flow-training-data"}},
        "jobs": {
            "write": {"type": "command", "outputs": {"folder": "${{parent.outputs.shared}}"},
                      "component": component("test -d ${{outputs.folder}} && test -d $(dirname ${{outputs.note}}) && echo hi > ${{outputs.folder}}/part.txt && echo '{\"decision\": true}' > ${{outputs.note}}",
                                             outputs={"folder": {"type": "uri_folder"}, "note": {"type": "uri_file"}}, name="write")},
            "read": {"type": "command", "inputs": {"data": {"path": "${{parent.jobs.write.outputs.folder}}"}, "n": 3}, "environment_variables": {"GREETING": "hello"},
                     "component": component('test "$(cat ${{inputs.data}}/part.txt)" = hi && test ${{inputs.n}} = 3 && test "$GREETING" = hello && test -n "$MLFLOW_RUN_ID"',
                                            inputs={"data": {"type": "uri_folder"}, "n": {"type": "integer"}}, name="read")},
        },
    }  # fmt: skip
    result = run_job(job, context)
    assert result.status == SUCCEEDED, {t.name: (t.reason, t.log and t.log.read_text()) for t in result.tasks.values()}
    assert list(result.tasks) == ["write", "read"]
    assert result.tasks["write"].parameters["note"] is True
    assert context.workspace.asset_path("azureml:flow-training-data@latest").joinpath("part.txt").read_text() == "hi\n"


@pytest.mark.slow
def test_a_failed_job_cancels_what_has_not_started(context: JobContext) -> None:
    job = {"type": "pipeline", "jobs": {
        "first": {"type": "command", "component": component("exit 3", name="first")},
        "second": {"type": "command", "inputs": {"x": "${{parent.jobs.first.outputs.out}}"}, "component": component("true", inputs={"x": {"type": "uri_folder"}}, name="second")},
    }}  # fmt: skip
    result = run_job(job, context)
    assert result.status == FAILED
    assert result.tasks["first"].reason == "exit status 3"
    assert result.tasks["second"].status == NOT_TRIGGERED


@pytest.mark.slow
def test_a_step_its_run_if_guard_skipped_counts_as_skipped_and_its_dependents_run(context: JobContext) -> None:
    job = {"type": "pipeline", "jobs": {
        "register": {"type": "command", "component": component("case 3 in 0) exit 9;; 3) echo 'register: skipped, run_if gate is false';; esac", name="register")},
        "after": {"type": "command", "inputs": {"x": "${{parent.jobs.register.outputs.out}}"},
                  "component": component("test -d ${{inputs.x}}", inputs={"x": {"type": "uri_folder"}}, outputs={}, name="after")},
    }}  # fmt: skip
    job["jobs"]["register"]["component"]["outputs"] = {"out": {"type": "uri_folder"}}
    result = run_job(job, context)
    assert result.tasks["register"].status == SKIPPED and result.tasks["register"].reason.startswith("run_if gate is false")
    assert result.tasks["after"].status == SUCCEEDED and result.status == SUCCEEDED


@pytest.mark.slow
def test_a_uri_file_output_the_command_did_not_write_fails_the_job(context: JobContext) -> None:
    job = {"type": "pipeline", "jobs": {"only": {"type": "command", "component": component("true", outputs={"metrics": {"type": "uri_file"}}, name="only")}}}
    result = run_job(job, context)
    assert result.tasks["only"].status == FAILED and "was not written" in result.tasks["only"].reason


@pytest.mark.slow
def test_a_sweep_ranks_trials_by_their_mlflow_metric_and_passes_on_the_best_outputs(context: JobContext, tmp_path: Path) -> None:
    # each trial logs `score` = its x to the MLflow run Azure ML opened for it (MLflow's REST
    # API, as mlflow.log_metric does), and writes x to its output
    log = """import json, os, sys, time, urllib.request
body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "score", "value": float(sys.argv[1]), "timestamp": int(time.time() * 1000), "step": 0}
request = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", json.dumps(body).encode(), {"Content-Type": "application/json"})
urllib.request.urlopen(request).read()
open(sys.argv[2] + "/x", "w").write(sys.argv[1])
"""
    script = tmp_path / "trial.py"
    script.write_text(log)
    job = {"type": "pipeline", "experiment_name": "unit", "jobs": {"tune": {
        "type": "sweep", "sampling_algorithm": "grid", "objective": {"goal": "maximize", "primary_metric": "score"},
        "search_space": {"x": {"type": "choice", "values": [0.2, 0.7, 0.4]}},
        "limits": {"max_total_trials": 3, "max_concurrent_trials": 2},
        "trial": component(f"python {script} ${{{{inputs.x}}}} ${{{{outputs.model}}}}", inputs={"x": {"type": "number"}}, outputs={"model": {"type": "uri_folder"}}, name="tune"),
    }}}  # fmt: skip
    result = run_job(job, context)
    tune = result.tasks["tune"]
    assert tune.status == SUCCEEDED, tune.reason
    assert tune.parameters["best_parameters"] == {"x": 0.7} and tune.parameters["score"] == 0.7
    assert Path(tune.artifacts["model"]["path"], "x").read_text() == "0.7"
    assert sorted(t["score"] for t in tune.parameters["trials"].values()) == [0.2, 0.4, 0.7]


@pytest.mark.slow
def test_a_sweep_whose_trials_log_no_metric_fails(context: JobContext) -> None:
    job = {"type": "pipeline", "jobs": {"tune": {
        "type": "sweep", "objective": {"goal": "maximize", "primary_metric": "auc"}, "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "limits": {"max_total_trials": 2}, "trial": component("echo auc=${{inputs.x}}", inputs={"x": {"type": "number"}}, name="tune"),
    }}}  # fmt: skip
    tune = run_job(job, context).tasks["tune"]
    assert tune.status == FAILED and "logged no 'auc' metric" in tune.reason


def test_random_is_not_used_by_the_interpreter_globally() -> None:
    state = random.getstate()
    sweep.sample(SPACE, "random", 3, seed=5)
    assert random.getstate() == state
    assert json.dumps(sweep.sample(SPACE, "bayesian", 2, seed=5))  # sampled like random


@pytest.fixture
def mlclient(context: JobContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """MLClient (as the steps and deploy build it) against the workspace stand-in, over HTTPS."""
    from mlcompile.emulate.services.azure_arm import bearer_token, serve, tls_certificate
    from mlcompile.runtime.azureml_client import ENV_ARM, ENV_CA, ENV_TOKEN, ml_client

    workspace = context.workspace
    workspace.arm.seed(workspace.path, {"location": "westeurope", "properties": {"workspaceId": "w", "discoveryUrl": ""}})
    workspace.arm.seed(f"{workspace.path}/computes/cpu", {"location": "westeurope", "properties": {"computeType": "AmlCompute", "properties": {}}})
    certificate = tls_certificate(tmp_path)
    server, url = serve(workspace.arm, certificate=certificate)
    for key, value in {ENV_ARM: url, ENV_CA: str(certificate[0]), ENV_TOKEN: bearer_token(url)}.items():
        monkeypatch.setenv(key, value)
    yield ml_client({"subscription_id": "sub", "resource_group": "rg", "workspace": "ws"})
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_pipeline_job_submitted_with_mlclient_runs_in_the_workspace(context: JobContext, mlclient: Any, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from azure.ai.ml import load_job

    from mlcompile.emulate.azureml.submitted import SubmittedJobs

    session = SimpleNamespace(log=lambda message: None, facts={}, run_job=lambda job, name=None: run_job(job, context, name=name))
    jobs = SubmittedJobs(session, context.workspace)
    context.workspace.arm.intercept = jobs.answer
    (tmp_path / "job.yml").write_text(
        "type: pipeline\ndisplay_name: submitted\nexperiment_name: unit\nsettings: {default_compute: azureml:cpu}\njobs:\n"
        "  write:\n    type: command\n    outputs: {out: {type: uri_folder}}\n"
        f"    environment: {{image: {IMAGE}}}\n    command: echo 42 > ${{{{outputs.out}}}}/answer\n"
        "  read:\n    type: command\n    inputs: {data: '${{parent.jobs.write.outputs.out}}'}\n"
        f'    environment: {{image: {IMAGE}}}\n    command: test "$(cat ${{{{inputs.data}}}}/answer)" = 42\n'
    )
    created = mlclient.jobs.create_or_update(load_job(tmp_path / "job.yml"))
    assert jobs.wait(120)
    assert mlclient.jobs.get(created.name).status == "Completed"
    assert [job.name for job in mlclient.jobs.list()] == [created.name]
    assert session.facts["retraining"] == {"submitted": created.name, "status": "succeeded"}


@pytest.mark.slow
def test_the_models_api_shows_the_mlflow_registry_and_its_stage_is_the_approval(context: JobContext, mlclient: Any) -> None:
    from mlcompile.emulate.azureml.registry import ModelRegistry

    workspace = context.workspace
    workspace.arm.intercept = ModelRegistry(workspace).answer
    name = f"model-{uuid.uuid4().hex[:6]}"  # the module's MLflow is shared
    workspace.mlflow("POST", "registered-models/create", {"name": name})
    run = workspace.start_run("unit", "register")
    for _ in range(2):  # as the register step does it: a version of the model its run logged
        workspace.mlflow(
            "POST", "model-versions/create", {"name": name, "source": f"runs:/{run}/model", "run_id": run, "tags": [{"key": "domain", "value": "growth"}]}
        )
    assert sorted(m.version for m in mlclient.models.list(name)) == ["1", "2"]
    assert mlclient.models.get(name, label="latest").version == "2"  # what azureml:<name>@latest resolves to
    first = mlclient.models.get(name, version="1")
    assert first.stage == "Development" and first.tags == {"domain": "growth"}
    first.stage = "Production"  # the approval, through MLClient: the runtime's `production` alias
    mlclient.models.create_or_update(first)
    assert workspace.mlflow("GET", "registered-models/alias", query={"name": name, "alias": "production"})["model_version"]["version"] == "1"
    assert mlclient.models.get(name, version="1").stage == "Production" and mlclient.models.get(name, version="2").stage == "Development"


@pytest.mark.sdk
@pytest.mark.parametrize("path", sorted(Path(__file__).parent.glob("golden/*/azure-prod/pipelines/*.yml")), ids=lambda p: p.name)
def test_every_built_pipeline_job_loads_and_its_commands_substitute(path: Path) -> None:
    """What the interpreter reads of each golden azure-prod pipeline: azure-ai-ml's load_job
    accepts it, its bindings name jobs of the pipeline, and every command's placeholders name
    declared inputs and outputs (each given a value, optional ones too)."""
    from mlcompile.emulate.azureml.jobs import load

    job = load(path)
    for name, node in job["jobs"].items():
        assert upstream(node) <= set(job["jobs"]), name
        component = node.get("trial") if node["type"] == "sweep" else node["component"]
        values = {side: {key: f"/mnt/{side}/{key}" for key in component.get(side) or {}} for side in ("inputs", "outputs")}
        line = substitute(component["command"], values["inputs"], values["outputs"], component)
        assert "${{" not in line and "$[[" not in line, name
        if node.get("distribution"):
            assert distributed_env(node["distribution"], int(node.get("resources", {}).get("instance_count", 1)))


def test_a_job_reads_a_keyvault_secret_with_its_compute_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """runtime.secrets on an emulated Azure ML job: DefaultAzureCredential gets a token from the
    compute's managed identity endpoint (MSI_ENDPOINT), the workspace names its Key Vault, and
    the vault answers the emulation config's secret."""
    from mlcompile.emulate.azureml.identity import JobIdentity
    from mlcompile.emulate.services.azure_arm import serve, tls_certificate
    from mlcompile.runtime.secrets import SecretUnavailable, resolve

    arm = ArmStandIn()
    workspace = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
    arm.seed(workspace, {"properties": {"keyVault": "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-ws"}})
    certificate = tls_certificate(tmp_path)
    server, url = serve(arm, certificate=certificate)
    identity = JobIdentity(url, {"team-webhook": "http://hooks.example/team"}, "kv-ws")
    arm.intercept = identity.answer
    for key, value in {**identity.env(str(certificate[0])), "AZUREML_ARM_SUBSCRIPTION": "sub", "AZUREML_ARM_RESOURCEGROUP": "rg", "AZUREML_ARM_WORKSPACE_NAME": "ws",
                       "MLCOMPILE_SECRET_TEAM_WEBHOOK": "keyvault:team-webhook", "MLCOMPILE_SECRET_OTHER": "keyvault:other"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    for variable in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(variable, raising=False)
    try:
        assert resolve("secret://team-webhook") == "http://hooks.example/team"
        with pytest.raises(SecretUnavailable, match="404"):
            resolve("secret://other")
    finally:
        server.shutdown()
        server.server_close()
    assert any(call.path == "/msi/token" for call in arm.calls)
