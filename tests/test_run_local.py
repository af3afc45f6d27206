"""`mlcompile run` end to end on this machine: the shipped examples, and a small system
crafted to switch gates and drift on and off. No network; MLflow on a SQLite file."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcompile.cli import main

for _module in ("sklearn", "pandas", "pyarrow", "mlflow", "optuna", "scipy", "starlette"):  # the `local` extra
    pytest.importorskip(_module)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

SPEC = """\
apiVersion: mlcompile/v1
kind: MLSystem
metadata: {{name: tiny-churn}}
features:
  entities: [{{name: customer, join_keys: [customer_id]}}]
  sources:
    - {{name: activity, uri: file://data/activity.csv, format: csv, timestamp_field: event_ts}}
    - {{name: labels, uri: file://data/labels.csv, format: csv, timestamp_field: label_ts}}
  views:
    - name: customer_activity
      entities: [customer]
      source: activity
      ttl: 30d
      online: true
      features:
        - {{name: orders_30d, dtype: int64}}
        - {{name: spend_30d, dtype: float64}}
        - {{name: plan, dtype: string}}
training:
  dataset:
    features: [customer_activity:orders_30d, customer_activity:spend_30d, customer_activity:plan]
    label: {{source: labels, column: churned}}
    split: {{test_fraction: 0.25, seed: 7}}
  trainer:
    sklearn:
      estimator: sklearn.ensemble.HistGradientBoostingClassifier
      params: {{max_iter: 40, random_state: 0}}
  evaluation:
    metrics: [roc_auc, accuracy]
    gates:
      - {{metric: roc_auc, min: {gate_min}}}
      - {{metric: roc_auc, min_delta_vs_production: -0.05}}
registry:
  model: tiny-churn-model
  approval: auto
  aliases: [candidate]
deployment:
  online: {{endpoint: tiny-churn}}
  batch:
    schedule: "0 3 * * *"
    input: {{source: activity}}
    output: {{uri: file://scores/scores.csv}}
monitoring:
  schedule: "0 4 * * *"
  drift: {{method: psi, threshold: 0.2, features: all}}
  performance:
    metric: roc_auc
    min: 0.6
    ground_truth: {{source: labels, column: churned}}
  alerts: [{{channel: email, to: [ml@example.com]}}]
  on_breach: retrain
"""

PROFILE = "apiVersion: mlcompile/v1\nkind: Target\nmetadata: {name: local}\nplatform: local\nlocal: {workdir: .mlcompile}\n"


def write_system(folder: Path, *, gate_min: float = 0.6, customers: int = 240) -> Path:
    """Snapshots on days 1, 8, 15 of March, labels on day 20: churners order little."""
    rng = random.Random(11)
    activity, labels = ["customer_id,event_ts,orders_30d,spend_30d,plan"], ["customer_id,label_ts,churned"]
    for i in range(customers):
        engagement = rng.random()
        plan = rng.choice(["basic", "plus", "pro"])
        for day in (1, 8, 15):
            orders = max(0, int(rng.gauss(engagement * 10, 1.5)))
            activity.append(f"c{i:04d},2025-03-{day:02d}T06:00:00Z,{orders},{orders * rng.uniform(8, 30):.2f},{plan}")
        labels.append(f"c{i:04d},2025-03-20T00:00:00Z,{int(1.5 - 3 * engagement + rng.gauss(0, 0.5) > 0)}")
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "activity.csv").write_text("\n".join(activity) + "\n")
    (folder / "data" / "labels.csv").write_text("\n".join(labels) + "\n")
    (folder / "mlcompile.yaml").write_text(SPEC.format(gate_min=gate_min))
    (folder / "targets").mkdir(exist_ok=True)
    (folder / "targets" / "local.yaml").write_text(PROFILE)
    return folder / "mlcompile.yaml"


def inject_drift(folder: Path) -> None:
    """A new snapshot for everyone on March 25: order counts and spend jump; labels of
    March 28 follow for a third of the customers (the new regime a retrained model learns)."""
    rng = random.Random(5)
    path = folder / "data" / "activity.csv"
    rows = path.read_text().splitlines()
    extra = []
    for line in rows[1:]:
        cid, ts, orders, spend, plan = line.split(",")
        if ts.startswith("2025-03-15"):
            boosted = int(orders) * 3 + 12 + rng.randint(0, 5)
            extra.append(f"{cid},2025-03-25T06:00:00Z,{boosted},{boosted * 40:.2f},{plan}")
    path.write_text("\n".join(rows + extra) + "\n")
    labels = folder / "data" / "labels.csv"
    new_labels = [f"{line.split(',')[0]},2025-03-28T00:00:00Z,{int(int(line.split(',')[2]) < 30)}" for line in extra[::3]]
    labels.write_text(labels.read_text() + "\n".join(new_labels) + "\n")


def inject_snapshot(path: Path, ts: str, *, days: int, scale: dict[str, float], rows: int | None = None) -> None:
    """Append a copy of the newest rows of a source, `days` later, with some columns scaled."""
    import pandas as pd

    frame = pd.read_csv(path)
    stamps = pd.to_datetime(frame[ts], utc=True)
    newest = frame[stamps == stamps.max()] if rows is None else frame.loc[stamps.sort_values().index[-rows:]]
    shifted = newest.assign(**{ts: (pd.to_datetime(newest[ts], utc=True) + pd.Timedelta(days=days)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")})
    if rows is None:  # a full snapshot: one row per entity, as the nightly job writes
        shifted = frame.sort_values(ts).groupby(frame.columns[0], as_index=False).tail(1)
        shifted = shifted.assign(**{ts: (stamps.max() + pd.Timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    for column, factor in scale.items():
        shifted[column] = (shifted[column] * factor).round(2) if shifted[column].dtype.kind == "f" else shifted[column] * int(factor)
    pd.concat([frame, shifted]).to_csv(path, index=False)


def run(spec: Path, *args: str) -> dict:
    result = CliRunner().invoke(main, ["run", str(spec), "--target", str(spec.parent / "targets" / "local.yaml"), "--format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    summary = json.loads(result.stdout)
    summary["_exit_code"] = result.exit_code
    return summary


def statuses(summary: dict, label: str) -> dict[str, str]:
    pipeline = next(p for p in summary["pipelines"] if p["label"] == label)
    return {s["name"]: s["status"] for s in pipeline["steps"]}


def registry_versions(workdir: Path, model: str) -> list[int]:
    db = workdir / "mlflow.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        return sorted(int(v) for (v,) in con.execute("SELECT version FROM model_versions WHERE name = ?", (model,)))


# ---------------------------------------------------------------------- the shipped examples


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MLflow's SQLAlchemy mappers, read in this process
def test_churn_example_end_to_end(tmp_path: Path) -> None:
    """train → gate → register (MLflow) → batch score → monitor: the watched features are
    stable, so nothing is retrained; then an injected shift in ordering breaches the drift
    threshold and the breach starts a retraining run that registers version 2."""
    folder = tmp_path / "churn"
    shutil.copytree(EXAMPLES / "churn", folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    summary = run_with_repo_profiles(folder)
    assert summary["status"] == "succeeded", summary.get("failed_step")
    assert [p["label"] for p in summary["pipelines"]] == ["training", "batch", "monitoring"]
    assert set(statuses(summary, "training").values()) == {"succeeded"}
    assert summary["metrics"]["roc_auc"] >= 0.78 and summary["gates"]["passed"]
    assert summary["model"]["model"] == "churn-classifier" and summary["model"]["version"] == "1"
    assert summary["model"]["aliases"] == ["candidate"] and summary["model"]["approval"] == "pending"  # manual approval
    assert summary["batch"]["rows"] == 900
    scores = (folder / "scores" / "churn_scores.csv").read_text().splitlines()
    assert len(scores) == 901 and "score" in scores[0]
    # tenure_days ages with the customer base by design and is not watched (see the spec)
    assert summary["drift"]["method"] == "psi" and not summary["drift"]["breach"]
    assert "tenure_days" not in summary["drift"]["drifted"]
    assert summary["performance"]["value"] > 0.75 and not summary["performance"]["breach"]
    assert not summary["retraining"]["triggered"]
    assert registry_versions(folder / ".mlcompile", "churn-classifier") == [1]
    report = Path(summary["report"]).read_text()
    assert "churn-classifier</b> version <b>1" in report

    # lineage on the registered version
    from mlflow import MlflowClient

    uri = "sqlite:///" + str(folder / ".mlcompile" / "mlflow.db")
    # both URIs: a registry URI left set in this process (mlflow.set_registry_uri) would win otherwise
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("churn-classifier", "1")
    assert version.tags["mlcompile.spec_sha256"] and len(version.tags["mlcompile.data.train_sha256"]) == 64
    assert version.tags["mlcompile.data.source.customer_activity_daily.sha256"]
    assert str(client.get_model_version_by_alias("churn-classifier", "candidate").version) == "1"
    run_data = client.get_run(version.run_id).data
    assert run_data.params["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier" and "roc_auc" in run_data.metrics

    # injected drift: a new nightly snapshot where every customer orders three times as much
    inject_snapshot(folder / "data" / "activity.csv", "event_ts", days=1, scale={"orders_30d": 3, "spend_30d": 3})
    again = run(folder / "mlcompile.yaml", "--only", "monitoring")
    assert {"orders_30d", "spend_30d"} <= set(again["drift"]["drifted"])
    assert again["retraining"]["triggered"] and set(statuses(again, "retraining").values()) == {"succeeded"}
    # same labelled events, but the sources' content changed: a new version with the new lineage
    assert again["retraining"]["model"]["version"] == "2" and not again["retraining"]["model"].get("existing")


def test_batch_scoring_example_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "invoices"
    shutil.copytree(EXAMPLES / "batch-scoring", folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    summary = run_with_repo_profiles(folder)
    assert summary["status"] == "succeeded", summary.get("failed_step")
    assert summary["model"]["aliases"] == ["candidate", "production"]  # approval: auto
    assert summary["batch"]["rows"] > 0 and (folder / "scores" / "late_payment_scores.csv").exists()
    assert summary["drift"]["method"] == "ks" and not summary["drift"]["breach"]
    assert statuses(summary, "monitoring") == {"check-drift": "succeeded", "check-performance": "succeeded", "alert": "skipped"}
    # injected drift: a day of invoices ten times larger; on_breach is `alert`, so no retraining
    inject_snapshot(folder / "data" / "invoices.csv", "issued_ts", days=1, scale={"amount_eur": 10}, rows=300)
    again = run(folder / "mlcompile.yaml", "--only", "monitoring")
    assert "amount_eur" in again["drift"]["drifted"]
    assert statuses(again, "monitoring")["alert"] == "succeeded"
    assert not again["retraining"]["triggered"] and "retraining" not in [p["label"] for p in again["pipelines"]]


def run_with_repo_profiles(folder: Path) -> dict:
    """The examples' overrides name the repository's profiles: keep them all beside the spec."""
    shutil.copytree(REPO / "targets", folder / "targets")
    return run(folder / "mlcompile.yaml")


@pytest.mark.slow
def test_init_project_trained_twice_on_the_same_data_registers_one_version(tmp_path: Path) -> None:
    # the scaffold's estimator has a random_state: without one, each fit draws a new seed, the
    # pickled model differs, and the registry takes the same training for a new version
    assert CliRunner().invoke(main, ["init", str(tmp_path / "fresh")]).exit_code == 0
    spec = tmp_path / "fresh" / "mlcompile.yaml"
    first, second = run(spec, "--only", "training"), run(spec, "--only", "training")
    assert first["model"]["version"] == "1" and not first["model"].get("existing")
    assert second["model"]["version"] == "1" and second["model"]["existing"]
    assert registry_versions(tmp_path / "fresh" / ".mlcompile", first["model"]["model"]) == [1]


# ---------------------------------------------------------------------- the crafted system


def test_no_drift_no_retraining_then_injected_drift_retrains(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    first = run(spec)
    assert first["status"] == "succeeded", first.get("failed_step")
    assert first["model"]["version"] == "1" and "production" in first["model"]["aliases"]
    assert statuses(first, "training")["deploy-online"] == "succeeded"
    assert not first["drift"]["breach"]
    assert statuses(first, "monitoring") == {"check-drift": "succeeded", "check-performance": "succeeded", "alert": "skipped", "trigger-retraining": "skipped"}
    assert not first["retraining"]["triggered"] and "retraining" not in [p["label"] for p in first["pipelines"]]

    inject_drift(spec.parent)
    second = run(spec, "--only", "monitoring")
    assert second["drift"]["breach"] and set(second["drift"]["drifted"]) >= {"orders_30d", "spend_30d"}
    assert statuses(second, "monitoring")["trigger-retraining"] == "succeeded"
    assert second["retraining"]["triggered"]
    retraining = statuses(second, "retraining")
    assert set(retraining.values()) == {"succeeded"}, retraining
    assert second["retraining"]["model"]["version"] == "2"  # new labelled events: a new model
    # champion/challenger: the challenger was compared with production version 1 on its test set
    champion = second["retraining"]["production"]
    assert champion["version"] == "1" and champion["source"] == "same test set" and "roc_auc" in champion["metrics"]
    delta_gate = next(g for g in second["retraining"]["gates"]["results"] if g["comparison"] == "min_delta_vs_production")
    assert delta_gate["production"] == champion["metrics"]["roc_auc"] and delta_gate["passed"]
    assert registry_versions(spec.parent / ".mlcompile", "tiny-churn-model") == [1, 2]
    alerts = (spec.parent / ".mlcompile" / "alerts.jsonl").read_text()
    assert "drift in orders_30d" in alerts
    report = Path(second["drift"]["report"]).read_text()
    assert "orders_30d" in report and report.count("<svg") == len(second["drift"]["drifted"])


def test_failing_gate_registers_nothing(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys", gate_min=0.999)
    summary = run(spec)
    assert summary["status"] == "succeeded"
    assert summary["gates"]["passed"] is False
    assert statuses(summary, "training") == {
        "extract-features": "succeeded", "validate-data": "succeeded", "train": "succeeded", "evaluate": "succeeded",
        "gate": "succeeded", "register": "skipped", "deploy-online": "skipped",
        "materialize-features": "succeeded",  # the online store is fed whatever the gate decides
    }  # fmt: skip
    assert summary["model"] is None
    assert registry_versions(spec.parent / ".mlcompile", "tiny-churn-model") == []
    assert {p["label"]: p["status"] for p in summary["pipelines"]} == {"training": "succeeded", "batch": "skipped", "monitoring": "skipped"}


def test_resume_skips_unchanged_steps_and_reruns_changed_ones(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    run(spec, "--only", "training")
    again = run(spec, "--only", "training", "--resume")
    steps = statuses(again, "training")
    assert {steps[s] for s in ("extract-features", "validate-data", "train")} == {"cached"}
    # evaluate depends on the champion, which the first run's auto approval made this very
    # model: it runs again, and register recognises the model instead of adding a version
    assert steps["evaluate"] == "succeeded" and steps["register"] == "succeeded"
    assert registry_versions(spec.parent / ".mlcompile", "tiny-churn-model") == [1]  # not registered twice
    labels = spec.parent / "data" / "labels.csv"
    labels.write_text(labels.read_text().replace(",1\n", ",0\n", 5))
    changed = run(spec, "--only", "training", "--resume")
    assert statuses(changed, "training")["extract-features"] == "succeeded"


def test_failed_step_stops_dependents_and_shows_its_log(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    activity = spec.parent / "data" / "activity.csv"
    activity.write_text(activity.read_text().replace(",plus\n", ",plus\n", 1).replace("T06:00:00Z,1,", "T06:00:00Z,lots,", 3))
    summary = run(spec, "--only", "training")
    assert summary["_exit_code"] == 1 and summary["status"] == "failed"
    steps = statuses(summary, "training")
    assert steps["validate-data"] == "failed"
    assert {steps[s] for s in ("train", "evaluate", "gate", "register", "deploy-online")} == {"skipped"}
    failed = summary["failed_step"]
    assert failed["step"] == "validate-data" and Path(failed["log"]).exists()
    assert any("orders_30d is declared int64 but" in line and "lots" in line for line in failed["log_tail"])


def test_text_output_and_subprocess_isolation(tmp_path: Path) -> None:
    """The exact cloud contract: each step as `python -m mlcompile.runtime <step> …`."""
    spec = write_system(tmp_path / "sys")
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(spec),
            "--target",
            str(spec.parent / "targets" / "local.yaml"),
            "--isolation",
            "subprocess",
            "--only",
            "extract-features",
            "--only",
            "validate-data",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "extract-features" in result.stderr and "succeeded" in result.stdout
    assert list((spec.parent / ".mlcompile" / "runs").glob("*/training/validate-data/report.json"))


def test_only_needs_upstream_outputs(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    summary = run(spec, "--only", "train")
    assert statuses(summary, "training")["train"] == "skipped"
    step = summary["pipelines"][0]["steps"][0]
    assert "run it first" in step["reason"]


def asgi_call(app, method: str, path: str, body: object = None, content_type: str = "application/json") -> tuple[int, dict]:
    """One request straight into the ASGI app (no sockets, no HTTP client library)."""
    import asyncio

    payload = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [(b"content-type", content_type.encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def test_serve_answers_predictions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlcompile.local.run import prepare
    from mlcompile.local.serve import create_app

    spec = write_system(tmp_path / "sys")
    run(spec, "--only", "training")
    app = create_app(prepare(str(spec), str(spec.parent / "targets" / "local.yaml")))
    assert asgi_call(app, "GET", "/health")[1]["version"] == "1"
    assert [f["column"] for f in asgi_call(app, "GET", "/metadata")[1]["features"]] == ["orders_30d", "spend_30d", "plan"]
    instances = [{"orders_30d": 0, "spend_30d": 0.0, "plan": "basic"}, {"orders_30d": 12, "spend_30d": 200.0, "plan": "pro"}]
    status, by_features = asgi_call(app, "POST", "/predict", {"instances": instances})
    assert status == 200 and by_features["predictions"] == [1, 0] and by_features["scores"][0] > by_features["scores"][1]
    # the runtime's server: features named view:feature or sent as CSV give the same answer
    refs = [f["ref"] for f in asgi_call(app, "GET", "/metadata")[1]["features"]]
    by_ref = [{ref: row[ref.split(":")[1]] for ref in refs} for row in instances]
    assert asgi_call(app, "POST", "/predict", {"instances": by_ref})[1]["predictions"] == [1, 0]
    assert asgi_call(app, "POST", "/predict", "0,0.0,basic\n12,200.0,pro\n", content_type="text/csv")[1]["predictions"] == [1, 0]
    # an entity the sources know nothing of is not scored, and the answer says so
    status, by_entity = asgi_call(app, "POST", "/predict", {"entities": [{"customer_id": "c0001"}, {"customer_id": "nobody"}]})
    assert status == 200 and by_entity["predictions"][1] is None and by_entity["unknown"] == [1]
    assert asgi_call(app, "POST", "/predict", {"rows": []})[0] == 400
    assert asgi_call(app, "POST", "/predict", {"instances": []})[0] == 400
    # an instance lacking features is completed from the sources by its entity key, which it must carry
    assert asgi_call(app, "POST", "/predict", {"instances": [{"orders_30d": 1}]}) == (
        400,
        {"error": "row 0: missing entity key customer_id (the online features are read by customer_id)"},
    )
    assert asgi_call(app, "POST", "/predict", {"entities": [{"id": 1}]})[0] == 400  # no entity key
    # the limits of the runtime's server are set as for it, through the environment
    monkeypatch.setenv("MLCOMPILE_MAX_BODY_BYTES", "64")
    bounded = create_app(prepare(str(spec), str(spec.parent / "targets" / "local.yaml")))
    assert asgi_call(bounded, "POST", "/predict", {"instances": instances})[0] == 413


STAND_IN_RANKER = '''\
"""Stand-in for the ranker image's `python -m ranker.launch` (the real one is PyTorch on
A100s): least squares on the numeric features, through mlcompile's container contract."""
import json, os, pathlib
import numpy as np
import pandas as pd

frame = pd.read_parquet(os.environ["MLCOMPILE_TRAIN_DATA"])
label = os.environ["MLCOMPILE_LABEL"]
hyper = json.loads(os.environ.get("MLCOMPILE_HYPERPARAMETERS") or "{}")
numeric = [c for c in frame.columns if c not in (label, "query_id", "user_id", "item_id") and pd.api.types.is_numeric_dtype(frame[c])]
queries = sorted(frame.query_id.unique())
held_out = set(queries[:: 5])
train, test = frame[~frame.query_id.isin(held_out)], frame[frame.query_id.isin(held_out)]
X = lambda f: np.c_[f[numeric].astype(float).fillna(0).to_numpy(), np.ones(len(f))]
weights = np.linalg.lstsq(X(train), train[label].to_numpy(float), rcond=None)[0] * (1 + float(hyper.get("dropout", 0)))
test = test.assign(score=X(test) @ weights)

def ndcg(group):
    gains = (2 ** group.sort_values("score", ascending=False)[label].to_numpy()[:10] - 1) / np.log2(np.arange(2, min(len(group), 10) + 2))
    ideal = (2 ** np.sort(group[label].to_numpy())[::-1][:10] - 1) / np.log2(np.arange(2, min(len(group), 10) + 2))
    return gains.sum() / ideal.sum() if ideal.sum() else 0.0

def average_precision(group):
    hits = (group.sort_values("score", ascending=False)[label].to_numpy()[:10] > 0).astype(float)
    return (np.cumsum(hits) / np.arange(1, len(hits) + 1) * hits).sum() / max(hits.sum(), 1)

groups = [g for _, g in test.groupby("query_id")]
out = pathlib.Path(os.environ["MLCOMPILE_MODEL_DIR"])
out.mkdir(parents=True, exist_ok=True)
(out / "weights.json").write_text(json.dumps(dict(zip(numeric + ["bias"], weights.tolist()))))
json.dump({"ndcg_at_10": float(np.mean([ndcg(g) for g in groups])), "map_at_10": float(np.mean([average_precision(g) for g in groups]))}, open(os.environ["MLCOMPILE_METRICS"], "w"))
'''


def test_ranker_example_with_a_stand_in_container_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranker's trainer is a container (PyTorch, 2 x 8 A100): here a stand-in package with
    the same `python -m ranker.launch` command runs on the host through the env-var contract,
    inside Optuna's search (3 of the spec's 24 trials, to stay fast). The gates use the metrics
    the trainer reported, drift uses the training data the runtime keeps with the model, and
    there is no performance check (NDCG@10 is no metric the runtime computes)."""
    folder = tmp_path / "ranker"
    shutil.copytree(EXAMPLES / "ranker-gpu", folder, ignore=shutil.ignore_patterns(".mlcompile"))
    (folder / "ranker").mkdir()
    (folder / "ranker" / "__init__.py").write_text("")
    (folder / "ranker" / "launch.py").write_text(STAND_IN_RANKER)
    spec = folder / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("max_trials: 24", "max_trials: 3"))
    monkeypatch.setenv("MLCOMPILE_CONTAINERS", "host")
    summary = run_with_repo_profiles(folder)
    assert summary["status"] == "succeeded", summary.get("failed_step")
    assert set(statuses(summary, "training").values()) == {"succeeded"}
    assert summary["training"]["trainer"]["trials"] == 3 and set(summary["metrics"]) == {"ndcg_at_10", "map_at_10"}
    assert summary["model"]["model"] == "search-ranker" and summary["model"]["approval"] == "pending"
    assert summary["drift"]["method"] == "jensen_shannon" and len(summary["drift"]["features"]) == 12
    assert summary.get("performance") is None


def test_run_refuses_a_cloud_profile(tmp_path: Path) -> None:
    spec = write_system(tmp_path / "sys")
    cloud = spec.parent / "targets" / "kfp-gke.yaml"
    shutil.copy(REPO / "targets" / "kfp-gke.yaml", cloud)
    result = CliRunner().invoke(main, ["run", str(spec), "--target", str(cloud)])
    assert result.exit_code == 2 and "runs on this machine" in result.stderr
