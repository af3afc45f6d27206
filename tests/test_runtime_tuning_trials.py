"""A tuning trial of a scikit-learn (runtime) step, as Katib and Azure ML's sweep run it,
trains with the values the platform chose and reports the objective where the platform
reads it.

The churn example with a search space is built for kfp-gke and azure-prod. Katib's trial
spec is substituted the way Katib does (`json.Marshal` of the spec, then each
`${trialParameters.X}` replaced by its reference's value: a search parameter's sampled value,
or for a `${trialSpec.Name}` reference the trial's name) and the launcher fills the artifact
placeholders; Azure ML's trial command (read back with azure-ai-ml's `load_job`) gets each
`${{inputs.X}}` pasted in and runs in bash. Each trial command then runs for real: the
saved model must hold the trial's values, Katib's collector filter must find the objective
in its file, and the MLflow run Azure ML opens for the trial must hold the objective."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlcompile.build import compile_system, resolve_profiles, write_builds
from mlcompile.runtime.io import write_table
from mlcompile.runtime.launch import substitute

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
for _module in ("sklearn", "pyarrow", "optuna"):
    pytest.importorskip(_module)

ROOT = Path(__file__).resolve().parents[1]
TUNING = (
    "  tuning:\n    objective: {metric: roc_auc, goal: maximize}\n    max_trials: 8\n    algorithm: random\n    params:\n"
    "      learning_rate: {type: float, min: 0.001, max: 0.3, scale: log}\n"
    "      max_leaf_nodes: {type: int, min: 8, max: 64}\n"
    "      loss: {type: categorical, values: [log_loss]}\n"
)
SAMPLED = {"learningRate": "0.0123", "maxLeafNodes": "9", "loss": "log_loss"}


def _has(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tuned")
    shutil.copytree(ROOT / "examples/churn", folder / "spec")
    spec = folder / "spec/mlcompile.yaml"
    spec.write_text(spec.read_text().replace("  evaluation:\n", TUNING + "  evaluation:\n", 1))
    names = ("kfp-gke", "azure-prod", "gcp-prod") if _has("google.cloud.aiplatform") else ("kfp-gke", "azure-prod")
    profiles = [str(ROOT / f"targets/{name}.yaml") for name in names]
    compilation = compile_system(str(spec), resolve_profiles(str(spec), profiles), render=True, git_commit=None)
    return {p.name: p for p in write_builds(compilation.results, folder / "out")}


@pytest.fixture(scope="module")
def experiment(builds: dict[str, Path]) -> dict:
    return yaml.safe_load((builds["kfp-gke"] / "training/tune-experiment.yaml").read_text())


def _assert_trained_with_the_trial_values(model_dir: Path) -> None:
    saved = json.loads((model_dir / "model.json").read_text())
    assert saved["params"]["learning_rate"] == pytest.approx(0.0123)
    assert saved["params"]["max_leaf_nodes"] == 9 and isinstance(saved["params"]["max_leaf_nodes"], int)
    assert saved["params"]["loss"] == "log_loss"


def _training_set(folder: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    meta = {
        "features": [{"ref": "v:x", "view": "v", "column": "x", "dtype": "float64"}, {"ref": "v:c", "view": "v", "column": "c", "dtype": "string"}],
        "label": "churned", "timestamp": "ts", "keys": ["k"], "sources": {}, "rows": {}, "coercion": {},
    }  # fmt: skip
    paths = {}
    for name, n in (("train", 150), ("test", 50)):
        x = rng.normal(size=n)
        frame = pd.DataFrame(
            {"k": [f"e{i}" for i in range(n)], "ts": "2025-01-01T00:00:00Z", "x": x, "c": rng.choice(["a", "b"], size=n), "churned": (x > 0).astype(int)}
        )
        paths[name] = str(folder / f"{name}.parquet")
        write_table(paths[name], frame, meta)
    (folder / "report.json").write_text("{}")
    paths["report"] = str(folder / "report.json")
    return paths


def test_every_trial_parameter_is_used_by_the_trial_spec(experiment: dict) -> None:
    # Katib's webhook refuses a trialParameter the trial spec never references (and vice versa)
    template = experiment["spec"]["trialTemplate"]
    text = json.dumps(template["trialSpec"])
    assert sorted(p["name"] for p in template["trialParameters"]) == sorted(set(re.findall(r"\$\{trialParameters\.([^}]+)\}", text)))


def test_a_runtime_trial_trains_with_the_values_katib_chose(experiment: dict, tmp_path: Path) -> None:
    template = experiment["spec"]["trialTemplate"]
    source = experiment["spec"]["metricsCollectorSpec"]["source"]
    katib_file = source["fileSystemPath"]["path"]
    text = json.dumps(template["trialSpec"])
    metadata = {"${trialSpec.Name}": "churn-tune-x7k2"}  # the metadata references Katib resolves
    for parameter in template["trialParameters"]:
        value = metadata.get(parameter["reference"]) or SAMPLED[parameter["name"]]
        text = text.replace("${trialParameters.%s}" % parameter["name"], value)
    assert "${" not in text  # Katib substitutes nothing else: any other ${...} stays literal
    text = text.replace(katib_file, str(tmp_path / "katib-metrics.json"))  # the sidecar's file, here
    trial = json.loads(text)
    (container,) = trial["spec"]["template"]["spec"]["containers"]
    assert container["name"] == template["primaryContainerName"]
    paths = _training_set(tmp_path)
    command = substitute([*container["command"], *container["args"]], paths, {"model": str(tmp_path / "model")}, lambda name: "")
    assert command[:3] == ["python", "-m", "mlcompile.runtime"]
    done = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr

    _assert_trained_with_the_trial_values(tmp_path / "model/trials/churn-tune-x7k2")

    # Katib's text collector: lines naming the metric, each match of the filter a (name, value)
    metric = experiment["spec"]["objective"]["objectiveMetricName"]
    (pattern,) = source["filter"]["metricsFormat"]
    lines = (tmp_path / "katib-metrics.json").read_text().splitlines()
    observed = [value for line in lines if metric in line for name, value in re.findall(pattern, line) if name == metric]
    assert len(observed) == 1 and 0.5 <= float(observed[0]) <= 1.0
    # and each secondary metric Katib records (additionalMetricNames), scored on the same folds
    for extra in experiment["spec"]["objective"]["additionalMetricNames"]:
        found = [value for line in lines for name, value in re.findall(pattern, line) if name == extra]
        assert len(found) == 1 and 0.0 <= float(found[0]) <= 1.0, (extra, lines)


@pytest.mark.parametrize(
    "written", ['{"ndcg_at_10": 0.4712, "map_at_10": 0.31}', '{\n  "map_at_10": 0.31,\n  "ndcg_at_10": 4.712e-01\n}', '{"ndcg_at_10": "0.4712"}']
)
def test_katib_observes_a_container_metrics_file_as_the_contract_writes_it(written: str) -> None:
    # the contract: MLCOMPILE_METRICS holds a JSON object {metric: number}, on one line or indented
    experiment = yaml.safe_load((ROOT / "tests/golden/ranker-gpu/kfp-gke/training/tune-experiment.yaml").read_text())
    source = experiment["spec"]["metricsCollectorSpec"]["source"]
    assert source["fileSystemPath"]["format"] == "TEXT"
    (pattern,) = source["filter"]["metricsFormat"]
    observed = [value for line in written.splitlines() if "ndcg_at_10" in line for name, value in re.findall(pattern, line) if name == "ndcg_at_10"]
    assert [float(v) for v in observed] == [0.4712]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_an_azure_sweep_trial_trains_with_its_values_and_logs_the_objective_to_its_run(
    builds: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("azure.ai.ml")
    mlflow = pytest.importorskip("mlflow")
    from azure.ai.ml import load_job

    job = load_job(builds["azure-prod"] / "pipelines/churn-prediction-training.yml")
    sweep = job.jobs["tune"]
    assert sweep.objective.primary_metric == "roc_auc"
    command = sweep.trial.command
    paths = _training_set(tmp_path)
    # Azure ML pastes inputs, outputs and each sampled value into the command (quniform
    # hands an integer parameter over as a float)
    sampled = {"learning_rate": "0.0123", "max_leaf_nodes": "9.0", "loss": "log_loss"}
    artifacts = {**{f"inputs.{k}": v for k, v in paths.items()}, "outputs.model": str(tmp_path / "model"), "outputs.metrics": str(tmp_path / "metrics.json")}
    for name, value in {**{f"inputs.{k}": v for k, v in sampled.items()}, **artifacts}.items():
        command = command.replace("${{%s}}" % name, value)
    assert "${{" not in command
    # the run Azure ML opens for the trial, and the environment it gives the process
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("churn-prediction", artifact_location=(tmp_path / "artifacts").as_uri()))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    script = f'python() {{ "{sys.executable}" "$@"; }}\n{command}\n'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr

    _assert_trained_with_the_trial_values(tmp_path / "model")
    logged = client.get_run(run.info.run_id).data.metrics
    assert 0.5 <= logged["roc_auc"] <= 1.0
    assert logged["roc_auc"] == pytest.approx(json.loads((tmp_path / "metrics.json").read_text())["roc_auc"])


def test_a_vertex_trial_takes_its_values_as_arguments_writes_to_its_own_folder_and_reports_to_hypertune(builds: dict[str, Path], tmp_path: Path) -> None:
    # Vertex AI runs the trial job's container with the study's values appended as --NAME=VALUE,
    # gives the trial its own AIP_MODEL_DIR and reads the objective from cloudml-hypertune's file
    if "gcp-prod" not in builds:
        pytest.skip("needs google-cloud-aiplatform")
    body = json.loads((builds["gcp-prod"] / "vertex/jobs/tune-hyperparameter-tuning-job.json").read_text())
    (pool,) = body["trialJobSpec"]["workerPoolSpecs"]
    container = pool["containerSpec"]
    assert body["studySpec"]["metrics"] == [{"metricId": "roc_auc", "goal": "MAXIMIZE"}]
    paths = _training_set(tmp_path)
    args = substitute(container["args"], paths, {}, lambda name: "")  # no shared model/metrics output in a trial
    trial_args = ["--learning_rate=0.0123", "--max_leaf_nodes=9", "--loss=log_loss"]
    trial_dir = tmp_path / "base" / "7"
    env = {
        **os.environ,
        "AIP_MODEL_DIR": str(trial_dir / "model"),
        "CLOUD_ML_TRIAL_ID": "7",
        "CLOUD_ML_HP_METRIC_FILE": str(tmp_path / "hypertune" / "output.metrics"),
    }
    done = subprocess.run([sys.executable, *container["command"][1:], *args, *trial_args], capture_output=True, text=True, timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stderr

    _assert_trained_with_the_trial_values(trial_dir / "model")
    written = json.loads((trial_dir / "metrics.json").read_text())
    assert {"roc_auc", "accuracy", "f1"} <= set(written)  # the secondary metrics the launcher copies from the best trial
    (line,) = (tmp_path / "hypertune" / "output.metrics").read_text().splitlines()
    reported = json.loads(line)
    assert reported["trial"] == "7" and float(reported["roc_auc"]) == pytest.approx(written["roc_auc"])


def test_a_vertex_trial_argument_that_names_no_search_parameter_is_refused(builds: dict[str, Path], tmp_path: Path) -> None:
    if "gcp-prod" not in builds:
        pytest.skip("needs google-cloud-aiplatform")
    body = json.loads((builds["gcp-prod"] / "vertex/jobs/tune-hyperparameter-tuning-job.json").read_text())
    container = body["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    args = substitute(container["args"], _training_set(tmp_path), {}, lambda name: "")
    done = subprocess.run([sys.executable, *container["command"][1:], *args, "--depth=3"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "unrecognized argument '--depth=3'" in done.stderr
