"""The card-fraud example's trainer (examples/container-trainer/trainer/train.py) run the way
each platform runs a training container: the same program reads its data and hyperparameters
where that platform puts them, writes the model and its metrics there, and reports the tuning
objective the way that platform's tuner reads it. Its model is then scored through its predict
entry point, as the runtime's serving, batch and monitoring steps score it."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import joblib
import pytest
from container_trainer_support import TRAINER, extract, run_trainer

pytestmark = pytest.mark.slow  # each case starts a trainer process (scikit-learn import + fit)

# Katib's default StdOut metrics collector format (katib: pkg/metricscollector/v1beta1/common)
KATIB_FORMAT = re.compile(r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return extract(tmp_path_factory.mktemp("card-fraud"))


def fitted(folder: Path) -> dict:
    saved = joblib.load(folder / "fraud-model.joblib")
    return saved["pipeline"].named_steps["model"].get_params()


def stdout_metrics(stdout: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in KATIB_FORMAT.finditer(stdout)}


def test_mlcompile_runtime_contract_environment(tmp_path: Path, data: dict[str, str]) -> None:
    """What mlcompile's runtime (and every pipeline's trainer task) gives: MLCOMPILE_* variables."""
    env = {
        "MLCOMPILE_TRAIN_DATA": data["train"], "MLCOMPILE_TEST_DATA": data["test"], "MLCOMPILE_LABEL": "is_fraud",
        "MLCOMPILE_MODEL_DIR": str(tmp_path / "model"), "MLCOMPILE_METRICS": str(tmp_path / "out" / "metrics.json"),
        "MLCOMPILE_HYPERPARAMETERS": json.dumps({"learning_rate": 0.05, "max_leaf_nodes": 9, "l2_regularization": 0.5}),
    }  # fmt: skip
    done = run_trainer(env)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics) == {"roc_auc", "average_precision", "accuracy"} and metrics["roc_auc"] > 0.75
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["fraud-model.joblib", "predict.py"]  # no model.json demanded
    params = fitted(tmp_path / "model")
    assert (params["learning_rate"], params["max_leaf_nodes"], params["l2_regularization"]) == (0.05, 9, 0.5)


def test_vertex_ai_trial_arguments_model_dir_and_hypertune_file(tmp_path: Path, data: dict[str, str]) -> None:
    """A Vertex AI tuning trial: values as --NAME=VALUE arguments, the model to AIP_MODEL_DIR,
    the objective in cloudml-hypertune's file (one JSON line, values as strings)."""
    hypertune = tmp_path / "hypertune" / "output.metrics"
    env = {
        "MLCOMPILE_TRAIN_DATA": data["train"], "MLCOMPILE_TEST_DATA": data["test"], "MLCOMPILE_LABEL": "is_fraud",
        "AIP_MODEL_DIR": str(tmp_path / "trial-3" / "model"), "MLCOMPILE_MODEL_DIR": str(tmp_path / "shared"),
        "MLCOMPILE_METRICS": str(tmp_path / "metrics.json"), "CLOUD_ML_TRIAL_ID": "3", "CLOUD_ML_HP_METRIC_FILE": str(hypertune),
    }  # fmt: skip
    done = run_trainer(env, ["--max_iter=200", "--learning_rate=0.08", "--max_leaf_nodes=11", "--l2_regularization=1.5"])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "trial-3" / "model" / "fraud-model.joblib").is_file() and not (tmp_path / "shared").exists()
    (line,) = hypertune.read_text().splitlines()
    reported = json.loads(line)
    assert reported["trial"] == "3" and float(reported["roc_auc"]) == json.loads((tmp_path / "metrics.json").read_text())["roc_auc"]
    assert fitted(tmp_path / "trial-3" / "model")["learning_rate"] == 0.08
    spec = importlib.util.spec_from_file_location("card_fraud_train", TRAINER)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert module.local("gs://bucket/runs/7/model") == "/gcs/bucket/runs/7/model"  # Vertex's Cloud Storage FUSE mount


def test_katib_trial_arguments_and_stdout_metric_lines(tmp_path: Path, data: dict[str, str]) -> None:
    """A Katib trial: values as `--NAME VALUE` arguments; Katib's StdOut collector reads
    `name=value` lines, and nothing else the trainer prints on stdout looks like one."""
    env = {"MLCOMPILE_TRAIN_DATA": data["train"], "MLCOMPILE_TEST_DATA": data["test"], "MLCOMPILE_LABEL": "is_fraud",
           "MLCOMPILE_MODEL_DIR": str(tmp_path / "model"), "MLCOMPILE_METRICS": str(tmp_path / "metrics.json")}  # fmt: skip
    done = run_trainer(env, ["--learning_rate", "0.1", "--max_leaf_nodes", "15", "--l2_regularization", "0"])
    assert done.returncode == 0, done.stderr
    assert stdout_metrics(done.stdout) == pytest.approx(json.loads((tmp_path / "metrics.json").read_text()), abs=1e-6)
    assert all("=" in line for line in done.stdout.splitlines())


def test_sagemaker_channels_hyperparameters_file_and_log_regex(tmp_path: Path, data: dict[str, str]) -> None:
    """A SageMaker training job: channels under /opt/ml/input/data, the trial's values (all
    strings) in /opt/ml/input/config/hyperparameters.json, the model in /opt/ml/model with the
    metrics beside it, and the objective matched in the log by the metric definition the
    build gives the tuning job."""
    from mlcompile.targets.sagemaker.layout import metric_definition

    opt_ml = tmp_path / "opt" / "ml"
    for channel in ("train", "test"):
        (opt_ml / "input" / "data" / channel).mkdir(parents=True)
        shutil.copy(data[channel], opt_ml / "input" / "data" / channel / f"{channel}.parquet")
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"learning_rate": "0.2", "max_leaf_nodes": "7", "l2_regularization": "0.0", "label": "is_fraud"})
    )
    done = run_trainer({"SM_BASE_DIR": str(opt_ml)}, ["train"])  # SageMaker runs `docker run IMAGE train`
    assert done.returncode == 0, done.stderr
    metrics = json.loads((opt_ml / "model" / "metrics.json").read_text())
    definition = metric_definition("roc_auc")
    (found,) = re.findall(definition["Regex"], done.stdout)
    assert float(found[0]) == pytest.approx(metrics["roc_auc"], abs=1e-6)
    assert (fitted(opt_ml / "model")["learning_rate"], fitted(opt_ml / "model")["max_leaf_nodes"]) == (0.2, 7)


def test_azure_ml_logs_the_objective_to_the_jobs_mlflow_run(tmp_path: Path, data: dict[str, str]) -> None:
    """An Azure ML sweep trial: the contract's variables on the command line, the values in
    MLCOMPILE_HYPERPARAMETERS, and the objective logged to the MLflow run Azure ML opened for
    the job (MLFLOW_RUN_ID), where the sweep reads its primary metric."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("sweep", artifact_location=(tmp_path / "artifacts").as_uri()))
    env = {
        "MLCOMPILE_TRAIN_DATA": data["train"], "MLCOMPILE_TEST_DATA": data["test"], "MLCOMPILE_LABEL": "is_fraud",
        "MLCOMPILE_MODEL_DIR": str(tmp_path / "model"), "MLCOMPILE_METRICS": str(tmp_path / "metrics.json"),
        "MLCOMPILE_HYPERPARAMETERS": '{"learning_rate": 0.03, "max_leaf_nodes": 20, "l2_regularization": 0.1}',
        "MLFLOW_TRACKING_URI": uri, "MLFLOW_RUN_ID": run.info.run_id,
    }  # fmt: skip
    done = run_trainer(env)
    assert done.returncode == 0, done.stderr
    logged = client.get_run(run.info.run_id).data.metrics
    assert logged == pytest.approx(json.loads((tmp_path / "metrics.json").read_text()))


def test_the_models_predict_entry_point_answers_json_lines(tmp_path: Path, data: dict[str, str]) -> None:
    """The runtime scores the trained model through predict.py, in the model folder: one JSON
    line per request, missing values and unknown categories included."""
    import pandas as pd

    from mlcompile.runtime.container_model import describe_trained
    from mlcompile.runtime.model import load_model, predict

    model_dir = tmp_path / "model"
    env = {"MLCOMPILE_TRAIN_DATA": data["train"], "MLCOMPILE_TEST_DATA": data["test"], "MLCOMPILE_LABEL": "is_fraud",
           "MLCOMPILE_MODEL_DIR": str(model_dir), "MLCOMPILE_METRICS": str(tmp_path / "metrics.json")}  # fmt: skip
    assert run_trainer(env).returncode == 0
    description = describe_trained(
        {"params": {"label": "is_fraud"}, "model": {"format": "mlcompile.container/1", "predict": {"command": ["python", "predict.py"], "args": []}}},
        data,
        {},
        {},
    )
    model, meta = load_model(model_dir, description)
    test = pd.read_parquet(data["test"])
    rows = pd.concat([test.head(40), pd.DataFrame([{"card_tier": "titanium"}, {}])], ignore_index=True)
    try:
        predictions, scores = predict(model, meta, rows)
    finally:
        model.close()
    assert len(predictions) == len(scores) == 42 and set(predictions) <= {0, 1} and all(0 <= s <= 1 for s in scores)
    assert predictions == [int(s >= 0.5) for s in scores]


def test_the_example_runs_end_to_end_on_this_machine_and_serves_through_its_predict_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlcompile run` of the example (2 of its 4 trials, to stay quick): the trainer runs on the
    host through the contract, the gates read its reported metrics, batch scoring and drift use
    the registered version, and `mlcompile serve`'s app answers through predict.py."""
    from test_run_local import asgi_call, run_with_repo_profiles, statuses

    from mlcompile.local.run import prepare
    from mlcompile.local.serve import create_app

    folder = tmp_path / "card-fraud"
    shutil.copytree(TRAINER.parents[1], folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    spec = folder / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("max_trials: 4", "max_trials: 2"))
    monkeypatch.setenv("MLCOMPILE_CONTAINERS", "host")
    summary = run_with_repo_profiles(folder)
    assert summary["status"] == "succeeded", summary.get("failed_step")
    assert set(statuses(summary, "training").values()) == {"succeeded"}
    assert set(summary["metrics"]) == {"roc_auc", "average_precision", "accuracy"} and summary["metrics"]["roc_auc"] > 0.75
    assert summary["model"]["approval"] == "pending" and summary["batch"]["rows"] == 300
    assert summary["drift"]["method"] == "psi" and len(summary["drift"]["features"]) == 7
    app = create_app(prepare(str(spec), str(folder / "targets" / "local.yaml")))
    status, answer = asgi_call(app, "POST", "/predict", {"entities": [{"card_id": "K00001"}, {"card_id": "K00000"}]})
    assert status == 200 and len(answer["predictions"]) == 2 and all(0 <= s <= 1 for s in answer["scores"])
