"""The runtime's side of the container-trainer contract, as it runs on every platform: a model
folder holds only what the user's trainer wrote (no model.json), evaluate reads the trainer's
`reported` metrics or scores the test set itself (`metrics_from`), register describes the
model, and batch scoring, monitoring and serving score it through its predict entry point."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from container_trainer_support import EXAMPLE, ROOT, example_plan
from sklearn.metrics import roc_auc_score

from mlcompile.plan.step_config import container_model, serving_env, step_config
from mlcompile.runtime import step_function
from mlcompile.runtime.contract import ENV_MODEL_MANIFEST
from mlcompile.runtime.io import DataError, write_table

# A predict entry point with no dependencies: the fraud score is a logistic of two features.
PREDICT = """\
import json, math, sys
for line in sys.stdin:
    rows = json.loads(line)["instances"]
    scores = [1 / (1 + math.exp(-(4 * (r["foreign_ratio_7d"] or 0) + 0.3 * (r["chargebacks_90d"] or 0) - 1.5))) for r in rows]
    print(json.dumps({"predictions": [int(s >= 0.5) for s in scores], "scores": scores}), flush=True)
"""


@pytest.fixture(scope="module")
def plan() -> Any:
    return example_plan()


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A model folder as a container trainer leaves it on a platform: its own files only."""
    folder = tmp_path / "trained"
    folder.mkdir()
    (folder / "predict.py").write_text(PREDICT)
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    return folder


@pytest.fixture
def test_set(tmp_path: Path, plan: Any) -> str:
    described = container_model(plan)
    assert described is not None
    frame = pd.DataFrame({
        "card_id": [f"K{i}" for i in range(40)], "label_ts": pd.Timestamp("2024-04-01", tz="UTC"),
        "txn_count_7d": range(40), "amount_7d": 10.0, "distinct_merchants_7d": 2, "foreign_ratio_7d": [i / 40 for i in range(40)],
        "chargebacks_90d": [i % 3 for i in range(40)], "card_tier": "gold", "account_age_days": 100, "is_fraud": [int(i > 25) for i in range(40)],
    })  # fmt: skip
    path = str(tmp_path / "test.parquet")
    write_table(path, frame, {"features": described["features"], "keys": ["card_id"], "timestamp": "label_ts", "label": "is_fraud", "sources": {}, "rows": {}})
    return path


def config_of(plan: Any, name: str, **params: Any) -> dict[str, Any]:
    step = plan.training.step(name)
    config = step_config(plan, step)
    config["params"] = {**config["params"], **params}
    return config


def test_evaluate_reads_the_trainers_reported_metrics_from_a_folder_without_model_json(tmp_path: Path, plan: Any, trained: Path, test_set: str) -> None:
    reported = tmp_path / "reported.json"
    reported.write_text(json.dumps({"roc_auc": 0.91, "average_precision": 0.8, "accuracy": 0.9, "note": "ignored"}))
    result = step_function("evaluate")(
        config_of(plan, "evaluate"), {"model": str(trained), "test": test_set, "reported": str(reported)}, {"metrics": str(tmp_path / "e.json")}
    )
    assert result["metrics"] == {"roc_auc": 0.91, "average_precision": 0.8, "accuracy": 0.9} and result["metrics_from"] == "reported"
    reported.write_text(json.dumps({"roc_auc": 0.91}))
    with pytest.raises(DataError, match="reported no average_precision, accuracy"):
        step_function("evaluate")(
            config_of(plan, "evaluate"), {"model": str(trained), "test": test_set, "reported": str(reported)}, {"metrics": str(tmp_path / "e.json")}
        )


def test_evaluate_finds_the_metrics_inside_sagemakers_model_tar_gz(tmp_path: Path, plan: Any, trained: Path, test_set: str) -> None:
    """SageMaker hands evaluate the training job's model.tar.gz for both the model and the
    reported metrics (MLCOMPILE_METRICS=/opt/ml/model/metrics.json travels inside it)."""
    (trained / "metrics.json").write_text(json.dumps({"roc_auc": 0.88, "average_precision": 0.7, "accuracy": 0.85}))
    for channel in ("model", "reported"):
        (tmp_path / channel).mkdir()
        with tarfile.open(tmp_path / channel / "model.tar.gz", "w:gz") as tar:
            for path in trained.iterdir():
                tar.add(path, arcname=path.name)
    inputs = {"model": str(tmp_path / "model" / "model.tar.gz"), "test": test_set, "reported": str(tmp_path / "reported" / "metrics.json")}
    result = step_function("evaluate")(config_of(plan, "evaluate"), inputs, {"metrics": str(tmp_path / "e.json")})
    assert result["metrics"] == {"roc_auc": 0.88, "average_precision": 0.7, "accuracy": 0.85}


def test_metrics_from_runtime_scores_the_test_set_through_the_predict_entry_point(tmp_path: Path, plan: Any, trained: Path, test_set: str) -> None:
    config = config_of(plan, "evaluate", metrics_from="runtime", metrics=["roc_auc", "accuracy"])
    reported = tmp_path / "reported.json"
    reported.write_text(json.dumps({"roc_auc": 0.5, "accuracy": 0.5}))  # not what is used
    result = step_function("evaluate")(config, {"model": str(trained), "test": test_set, "reported": str(reported)}, {"metrics": str(tmp_path / "e.json")})
    test = pd.read_parquet(test_set)
    import math

    scores = [1 / (1 + math.exp(-(4 * f + 0.3 * c - 1.5))) for f, c in zip(test.foreign_ratio_7d, test.chargebacks_90d)]
    assert result["metrics_from"] == "runtime"
    assert result["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(test.is_fraud, scores), abs=1e-6)
    assert result["metrics"]["accuracy"] == pytest.approx(sum(int(s >= 0.5) == y for s, y in zip(scores, test.is_fraud)) / len(test), abs=1e-6)


@pytest.mark.slow
def test_register_describes_a_container_model_and_keeps_its_drift_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan: Any, trained: Path, test_set: str
) -> None:
    """What register logs is loadable where the model is scored: model.json (the plan's
    description: features, keys, predict entry point) and baseline.parquet beside the trainer's files."""
    from mlcompile.runtime.model import load_model, predict
    from mlcompile.runtime.registry import production_model

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLCOMPILE_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps({"metrics": {"roc_auc": 0.9}, "production": None}))
    register = plan.training.step("register")
    assert "train" in {r.name for r in register.inputs}
    result = step_function("register")(step_config(plan, register), {"model": str(trained), "metrics": str(evaluation), "train": test_set}, {})
    assert not (trained / "model.json").exists()  # the trainer's folder is left as it was
    serving = production_model({"registry": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}, "card-fraud", try_unapproved=True)
    assert serving is not None and serving.version == result["version"]
    meta = json.loads((serving.folder / "model.json").read_text())
    assert meta["format"] == "mlcompile.container/1" and meta["predict"] == {"command": ["python", "predict.py"], "args": []}
    assert meta["keys"] == ["card_id"] and meta["metrics"] == {"roc_auc": 0.9} and len(meta["features"]) == 7
    assert (serving.folder / "baseline.parquet").is_file() and (serving.folder / "weights.bin").is_file()
    model, meta = load_model(serving.folder)
    try:
        predictions, scores = predict(model, meta, pd.read_parquet(test_set).head(5))
    finally:
        model.close()
    assert predictions == [0, 0, 0, 0, 0] and len(scores) == 5


def test_load_model_refuses_a_container_model_without_a_predict_entry_point(trained: Path, plan: Any) -> None:
    from mlcompile.runtime.model import load_model

    described = {**(container_model(plan) or {}), "predict": None}
    with pytest.raises(DataError, match="has no predict entry point"):
        load_model(trained, described)
    with pytest.raises(DataError, match="not a model folder"):
        load_model(trained)


def test_a_failing_or_chatty_predict_entry_point_is_a_clear_error(trained: Path, plan: Any) -> None:
    from mlcompile.runtime.model import load_model, predict

    frame = pd.DataFrame([{f["column"]: 1 for f in (container_model(plan) or {})["features"]}])
    (trained / "predict.py").write_text("import sys\nprint('loading model...')\n")
    model, meta = load_model(trained, container_model(plan))
    with pytest.raises(DataError, match="not a JSON line"):
        predict(model, meta, frame)
    (trained / "predict.py").write_text("import sys\nsys.exit(3)\n")
    model, meta = load_model(trained, container_model(plan))
    with pytest.raises(DataError, match="exited with status 3"):
        predict(model, meta, frame)


def test_the_predict_entry_point_gets_its_model_folder_however_the_folder_was_named(trained: Path, plan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative model folder (mlcompile serve --model-dir model/) still reaches the program,
    which runs inside it, as a path it can open."""
    from mlcompile.runtime.model import load_model, predict

    (trained / "threshold.txt").write_text("0.0")
    (trained / "predict.py").write_text(
        "import json, os, pathlib, sys\n"
        "cut = float((pathlib.Path(os.environ['MLCOMPILE_MODEL_DIR']) / 'threshold.txt').read_text())\n"
        "for line in sys.stdin:\n"
        "    rows = json.loads(line)['instances']\n"
        "    print(json.dumps({'predictions': [int(r['txn_count_7d'] > cut) for r in rows]}), flush=True)\n"
    )
    monkeypatch.chdir(trained.parent)
    model, meta = load_model(Path(trained.name), container_model(plan))
    try:
        predictions, scores = predict(model, meta, pd.DataFrame([{f["column"]: 1 for f in meta["features"]}]))
    finally:
        model.close()
    assert predictions == [1] and scores == [1]  # a regressor-like answer: its score is its prediction


def test_serving_a_trainers_folder_described_by_the_serving_environment(trained: Path, plan: Any) -> None:
    """Vertex AI and SageMaker serve the folder the trainer wrote: the serving container's
    MLCOMPILE_MODEL_MANIFEST (from the build) describes it, and the runtime's server answers."""
    from mlcompile.runtime.serve import create_app, locate_model

    env = serving_env(plan)
    assert set(env) == {ENV_MODEL_MANIFEST} and len(env[ENV_MODEL_MANIFEST]) <= 1024  # SageMaker's limit of an environment value
    located = locate_model(str(trained), {}, env)
    assert located.folder == trained
    from test_run_local import asgi_call

    app = create_app(located.folder, version="3", environ=env)
    rows = [{f["column"]: v for f, v in zip((container_model(plan) or {})["features"], [5, 100.0, 2, 0.9, 2, "gold", 50])}]
    status, answer = asgi_call(app, "POST", "/predict", {"instances": rows})
    assert status == 200 and answer["predictions"] == [1] and answer["scores"][0] == pytest.approx(1 / (1 + 2.718281828 ** -(4 * 0.9 + 0.6 - 1.5)), abs=1e-6)


def test_the_plan_wires_the_contract(plan: Any) -> None:
    evaluate = plan.training.step("evaluate")
    assert evaluate.params["metrics_from"] == "reported" and {r.name: (r.step, r.artifact) for r in evaluate.inputs}["reported"] == ("tune", "metrics")
    for pipeline, name in ((plan.training, "evaluate"), (plan.training, "register"), (plan.batch, "score-batch"), (plan.monitoring_pipeline, "check-drift")):
        assert step_config(plan, pipeline.step(name))["model"]["predict"] == {"command": ["python", "predict.py"], "args": []}
    assert "model" not in step_config(plan, plan.training.step("gate"))


@pytest.mark.slow
def test_every_cloud_build_gives_the_serving_container_the_models_description() -> None:
    from build_support import build

    spec = EXAMPLE / "mlcompile.yaml"
    vertex = json.loads(build(spec, ROOT / "targets" / "gcp-prod.yaml")["vertex/model.json"][1])
    assert ENV_MODEL_MANIFEST in {e["name"] for e in vertex["model"]["containerSpec"]["env"]}
    kserve = build(spec, ROOT / "targets" / "kfp-gke.yaml")["serving/inference-service.yaml"][1].decode()
    assert ENV_MODEL_MANIFEST in kserve
    sagemaker = build(spec, ROOT / "targets" / "aws-prod.yaml")["pipelines/card-fraud-training.definition.json"][1].decode()
    assert ENV_MODEL_MANIFEST in sagemaker and "MLCOMPILE_TEST_DATA" in sagemaker


def test_local_tuning_hands_on_the_best_trials_reported_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tune step's `metrics` output is evaluate's `reported` input: the best trial's
    metrics (it was the search's summary, which reports no roc_auc), and each trial gets the
    held-out set its metrics are computed on (MLCOMPILE_TEST_DATA)."""
    trainer = tmp_path / "trainer.py"
    trainer.write_text(
        "import json, os, pathlib\n"
        "hp = json.loads(os.environ['MLCOMPILE_HYPERPARAMETERS'])\n"
        "pathlib.Path(os.environ['MLCOMPILE_MODEL_DIR']).mkdir(parents=True, exist_ok=True)\n"
        "json.dump({'roc_auc': hp['x'], 'test': os.environ['MLCOMPILE_TEST_DATA']}, open(os.environ['MLCOMPILE_METRICS'], 'w'))\n"
    )
    monkeypatch.setenv("MLCOMPILE_CONTAINERS", "host")
    frame = pd.DataFrame({"k": ["a", "b"], "f": [1.0, 2.0], "y": [0, 1]})
    write_table(str(tmp_path / "train.parquet"), frame, {"features": [{"ref": "v:f", "view": "v", "column": "f", "dtype": "float64"}], "keys": ["k"]})
    tuning = {"metric": "roc_auc", "goal": "maximize", "max_trials": 3, "parallel_trials": 1, "algorithm": "random",
              "params": [{"name": "x", "type": "float", "min": 0.0, "max": 1.0, "scale": "linear", "values": []}]}  # fmt: skip
    config = {"params": {"label": "y", "env": {}}, "tuning": tuning, "container": {"image": "t:1", "command": ["python", str(trainer)], "args": []}}
    inputs = {"train": str(tmp_path / "train.parquet"), "test": str(tmp_path / "test.parquet"), "report": ""}
    result = step_function("tune")(config, inputs, {"model": str(tmp_path / "m"), "metrics": str(tmp_path / "metrics.json")})
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["roc_auc"] == result["best_value"] and written["test"] == inputs["test"]
    from mlcompile.runtime.container_model import read_reported

    assert read_reported(str(tmp_path / "metrics.json")) == {"roc_auc": result["best_value"]}


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"deployment": {"online": {"endpoint": "card-fraud"}}}, "deployment.online", "an online endpoint scores rows"),
        ({"training": {"evaluation": {"metrics_from": "runtime", "metrics": ["ndcg_at_10"], "gates": []}, "tuning": None}}, "training.evaluation.metrics[0]", "cannot compute 'ndcg_at_10'"),
        ({"training": {"trainer": {"container": None, "sklearn": {"estimator": "sklearn.linear_model.LogisticRegression"}}, "evaluation": {"metrics_from": "reported"}, "tuning": None}},
         "training.evaluation.metrics_from", "a scikit-learn trainer reports no metrics"),
    ],
)  # fmt: skip
def test_validate_refuses_what_nothing_could_score(tmp_path: Path, change: dict, where: str, message: str) -> None:
    import yaml
    from click.testing import CliRunner

    from mlcompile.cli import main

    def merge(into: dict, patch: dict) -> None:
        for key, value in patch.items():
            if value is None:
                into.pop(key, None)
            elif isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    data = yaml.safe_load((EXAMPLE / "mlcompile.yaml").read_text())
    if "deployment" in change:
        data["training"]["trainer"]["container"].pop("predict")
    merge(data, change)
    data.pop("overrides")
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: {where}: " in result.stderr and message in result.stderr
