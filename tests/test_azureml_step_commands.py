"""The commands of a built Azure ML pipeline job, run as Azure ML runs them (the job loaded
with azure-ai-ml's `load_job`, placeholders replaced by mounted paths: see
tests/azureml_steps_support.py): each step reads what the previous one wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from requires import require

require("azure.ai.ml")

from azureml_steps_support import ROOT, build, load_pipeline, run_node, stage_source  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore:.*marshmallow.*")]

LAKE = "abfss://crm@acmegrowthlake.dfs.core.windows.net"


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("churn", tmp_path_factory.mktemp("churn-build"))


@pytest.fixture(scope="module")
def emulate_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("emulate-root")
    stage_source(root, f"{LAKE}/customer_activity_daily.parquet", ROOT / "examples/churn/data/activity.csv")
    stage_source(root, f"{LAKE}/churn_labels.parquet", ROOT / "examples/churn/data/labels.csv")
    return root


@pytest.fixture(scope="module")
def features(churn: Path, emulate_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """extract-features of the training pipeline, run once for the tests below."""
    job = load_pipeline(churn, "churn-prediction-training")
    workdir = tmp_path_factory.mktemp("training")
    run = run_node(job, "extract_features", {}, workdir, {"MLCOMPILE_EMULATE_ROOT": str(emulate_root)})
    return job, workdir, run


def test_extract_features_writes_tables_into_its_uri_folder_outputs(features) -> None:
    _, _, run = features
    assert run.code == 0, run.stderr
    assert (run.outputs["train"] / "train.parquet").is_file()
    assert (run.outputs["test"] / "test.parquet").is_file()


@pytest.fixture(scope="module")
def trained(features, emulate_root: Path):
    """validate-data, train and evaluate on what extract-features wrote."""
    job, workdir, extracted = features
    assert extracted.code == 0, extracted.stderr
    env = {"MLCOMPILE_EMULATE_ROOT": str(emulate_root)}
    data = {"train": extracted.outputs["train"], "test": extracted.outputs["test"]}
    validated = run_node(job, "validate_data", data, workdir, env)
    assert validated.code == 0, validated.stderr
    train = run_node(job, "train", {**data, "report": validated.outputs["report"]}, workdir, env)
    assert train.code == 0, train.stderr
    evaluated = run_node(job, "evaluate", {"model": train.outputs["model"], "test": data["test"]}, workdir, env)
    assert evaluated.code == 0, evaluated.stderr
    return job, workdir, train.outputs["model"], evaluated.outputs["metrics"]


def test_readers_take_the_dataset_folders(trained) -> None:
    _, _, model_folder, _ = trained
    model = json.loads((model_folder / "model.json").read_text())
    # the dataset's metadata (rows, sources) was read from the folder's parquet file
    assert model["data"]["rows"]["train"] > 0 and set(model["data"]["sources"]) == {"customer_activity_daily", "churn_labels"}, model["data"]


def _register(trained, decision: Path | None, tmp_path: Path):
    job, _, model_folder, metrics = trained
    inputs = {"model": model_folder, "metrics": metrics, "decision": decision if decision is not None else tmp_path / "never-written"}
    return run_node(job, "register", inputs, tmp_path, {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"})


def test_register_runs_when_the_gate_passed(trained, tmp_path: Path) -> None:
    decision = tmp_path / "decision"
    decision.write_text(json.dumps({"decision": True}))
    run = _register(trained, decision, tmp_path)
    assert run.code == 0, run.stderr
    assert "registered churn-classifier version 1" in run.stdout


def test_register_is_skipped_only_when_the_gate_says_failed(trained, tmp_path: Path) -> None:
    decision = tmp_path / "decision"
    decision.write_text(json.dumps({"decision": False, "passed": False}))
    run = _register(trained, decision, tmp_path)
    assert run.code == 0, run.stderr
    assert "register: skipped, run_if gate is false" in run.stdout


@pytest.mark.parametrize(
    "content", [None, "{not json", json.dumps({"passed": True}), json.dumps({"decision": "yes"})], ids=["missing", "not-json", "no-decision", "not-boolean"]
)
def test_a_missing_or_malformed_decision_fails_the_step(trained, tmp_path: Path, content: str | None) -> None:
    decision = None
    if content is not None:
        decision = tmp_path / "decision"
        decision.write_text(content)
    run = _register(trained, decision, tmp_path)
    assert run.code != 0, run.stdout
    assert "skipped" not in run.stdout
    assert "register: failed, the decision of run_if gate is missing or unreadable" in run.stderr


def test_a_sweep_trial_gives_a_container_integer_parameters_as_integers(tmp_path: Path) -> None:
    """Azure ML's quniform samples an integer parameter as a float (`12.0`) and pastes it into
    the trial's command: the container trainer still reads `"max_leaf_nodes": 12`."""
    import os
    import stat

    job = load_pipeline(build("container-trainer", tmp_path / "build"), "card-fraud-training")
    stub = tmp_path / "bin" / "python"  # stands for the trainer: records what it was given
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\nprintf %s "$MLCOMPILE_HYPERPARAMETERS" > {tmp_path / "hyperparameters.json"}\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    sampled = {"l2_regularization": "1.25", "learning_rate": "0.0512", "max_leaf_nodes": "12.0"}
    data = {name: tmp_path / name for name in ("train", "test", "report")}
    run = run_node(job, "tune", {**data, **sampled}, tmp_path / "trial", {"PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}"})
    assert run.code == 0, run.stderr
    values = json.loads((tmp_path / "hyperparameters.json").read_text())
    assert values == {"l2_regularization": 1.25, "learning_rate": 0.0512, "max_leaf_nodes": 12}
    assert isinstance(values["max_leaf_nodes"], int)


def test_batch_scoring_uses_the_approved_version_and_writes_its_bound_output(trained, emulate_root: Path, tmp_path: Path) -> None:
    """score-batch scores with the version a person approved (alias `production`), never a
    newer unapproved one, and writes only the output Azure ML binds to the batch output URI."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from mlcompile.runtime.emulated_storage import local_path

    decision = tmp_path / "decision"
    decision.write_text(json.dumps({"decision": True}))
    assert _register(trained, decision, tmp_path).code == 0
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    first = client.get_model_version("churn-classifier", "1")
    client.create_model_version("churn-classifier", source=first.source, run_id=first.run_id)  # version 2, not approved
    job = load_pipeline(build("churn", tmp_path / "build"), "churn-prediction-batch-scoring")
    env = {"MLCOMPILE_EMULATE_ROOT": str(emulate_root), "MLFLOW_TRACKING_URI": tracking}

    refused = run_node(job, "score_batch", {}, tmp_path / "before-approval", env)
    assert refused.code == 1 and "no approved version of churn-classifier" in refused.stderr, refused.stderr

    client.set_registered_model_alias("churn-classifier", "production", "1")
    scored = run_node(job, "score_batch", {}, tmp_path / "approved", env)
    assert scored.code == 0, scored.stderr
    scores = pd.read_parquet(scored.outputs["scores"])
    assert set(scores["model_version"]) == {"1"} and len(scores) > 0
    assert not local_path("abfss://churn@acmegrowthlake.dfs.core.windows.net/churn_scores.parquet", emulate_root).exists()
