"""The Feast feature repositories the `local` and `kubeflow` builds generate, checked with Feast
itself, and the local feature-store loop: apply → point-in-time training set → materialise →
serve by entity key.

How each repository is checked with no network:

* local (`feature_repo/` of the local build): the sources staged as the run stages them,
  then Feast's own CLI in a temporary copy: `feast plan` and `feast apply` (file offline
  store, SQLite online store and registry, all inside the repository).
* kubeflow (gs:// parquet / BigQuery sources, Redis online store, gs:// registry): applying
  would reach the cloud, so `feature_store.yaml` is loaded by Feast's `load_repo_config`
  (which validates the offline and online store blocks against Feast's store config
  classes) and the definitions are imported by Feast's own repository parser
  (`parse_repo`, what `feast apply` runs first); the objects it finds are validated and
  serialised to their registry protos."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from build_support import ROOT, build
from requires import require

require("feast", "sklearn")
pd = pytest.importorskip("pandas")

from mlcompile.errors import SpecError  # noqa: E402
from mlcompile.targets import feast_repo  # noqa: E402

EXAMPLES = ("churn", "ranker-gpu", "batch-scoring")
# the spec declares no dtype for join keys, so the entities leave Feast to infer it
pytestmark = pytest.mark.filterwarnings("ignore:Entity value_type will be mandatory:DeprecationWarning")


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEAST_USAGE", "False")


def _write(files: dict[str, tuple[str, bytes]], folder: Path) -> Path:
    """The build's feature_repo/ files into folder; the repository's path."""
    for path, (_, content) in files.items():
        if path.startswith(feast_repo.REPO_DIR + "/"):
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
    return folder / feast_repo.REPO_DIR


def _kubeflow_profile(folder: Path, name: str, feature_store: str) -> Path:
    """A kubeflow profile named `name` (so that the examples' `overrides.<name>` apply)."""
    text = (ROOT / "targets" / "kfp-gke.yaml").read_text()
    text = text.replace("name: kfp-gke", f"name: {name}").split("  # Feast feature repository")[0] + feature_store
    profile = folder / "targets" / f"{name}.yaml"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(text)
    return profile


# ------------------------------------------------------------------ the generated files


def test_every_spec_dtype_maps_to_a_feast_type() -> None:
    import feast.types

    from mlcompile.spec.models import DType

    assert set(feast_repo.FEAST_TYPES) == set(get_args(DType))
    for dtype, name in feast_repo.FEAST_TYPES.items():
        assert isinstance(getattr(feast.types, name), feast.types.PrimitiveFeastType), dtype


# `feast plan`, then `feast apply`: Feast's own CLI commands, in one fresh interpreter (Feast's
# import is ~4 s of CPU; a process per command paid it twice)
FEAST_PLAN_THEN_APPLY = """
import json, os, sys
from click.testing import CliRunner
from feast.cli.cli import cli
outcomes = {}
for command in ("plan", "apply"):
    for name, module in list(sys.modules.items()):  # each command imports the repository's files afresh
        if (getattr(module, "__file__", None) or "").startswith(os.getcwd() + os.sep):
            del sys.modules[name]
    result = CliRunner().invoke(cli, [command])
    outcomes[command] = {"exit": result.exit_code, "output": result.output + repr(result.exception or "")}
print(json.dumps(outcomes))
"""


@pytest.mark.parametrize("example", EXAMPLES)
def test_local_repo_passes_feast_plan_and_apply(example: str, tmp_path: Path) -> None:
    from mlcompile.local.run import prepare
    from mlcompile.plan.step_config import step_config
    from mlcompile.runtime.feast_store import stage_sources
    from mlcompile.runtime.features import FeatureStore

    spec = ROOT / "examples" / example / "mlcompile.yaml"
    files = build(spec, ROOT / "targets" / "local.yaml")
    assert {k for p, (k, _) in files.items() if p.startswith("feature_repo/")} == {"feast.feature_store_config", "feast.repo"}
    repo = _write(files, tmp_path)
    # the sources as the run stages them (parquet under data/, timestamps in UTC)
    prepared = prepare(str(spec), str(ROOT / "targets" / "local.yaml"))
    config = step_config(prepared.plan, prepared.plan.training.step("extract-features"))
    staged = stage_sources(FeatureStore(_absolute(config["features"], spec.parent)), repo)
    assert staged
    done = subprocess.run([sys.executable, "-c", FEAST_PLAN_THEN_APPLY], cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    outcomes = json.loads(done.stdout.splitlines()[-1])
    for command in ("plan", "apply"):
        assert outcomes[command]["exit"] == 0, outcomes[command]["output"]
        for view in prepared.plan.features.views:
            assert f"feature view {view.name}" in outcomes[command]["output"]
    assert (repo / "data" / "registry.db").exists() and (repo / "data" / "online_store.db").exists()


def _absolute(features: dict, spec_dir: Path) -> dict:
    """file:// URIs made absolute (the runtime reads them relative to MLCOMPILE_SPEC_DIR)."""
    for source in features["sources"]:
        if source["uri"].startswith("file://") and not source["uri"].startswith("file:///"):
            source["uri"] = "file://" + str(spec_dir / source["uri"][len("file://") :])
    return features


def _load_with_feast(repo: Path, monkeypatch: pytest.MonkeyPatch) -> tuple:
    from feast.repo_config import load_repo_config
    from feast.repo_operations import parse_repo

    monkeypatch.syspath_prepend(str(repo))
    monkeypatch.chdir(repo)  # Feast names the definition modules by their path from here
    config = load_repo_config(repo, repo / "feature_store.yaml")
    contents = parse_repo(repo)
    for name in [m for m in sys.modules if m.endswith("_features")]:
        del sys.modules[name]  # the next example's module has its own definitions
    return config, contents


@pytest.mark.parametrize("example", EXAMPLES)
def test_kubeflow_repo_loads_with_feasts_config_and_repo_parser(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("redis")  # Feast's Redis online store config lives in a module that imports it
    monkeypatch.setenv("MLCOMPILE_SECRET_FEAST_REDIS_PASSWORD", "from-the-secret")
    spec = ROOT / "examples" / example / "mlcompile.yaml"
    files = build(spec, ROOT / "targets" / "kfp-gke.yaml")
    config, contents = _load_with_feast(_write(files, tmp_path), monkeypatch)
    assert config.offline_store.type == "file" and config.online_store.type == "redis"
    # a secret:// ref in the profile, expanded by Feast from the pod's environment
    assert config.online_store.connection_string == "redis-master.feast.svc.cluster.local:6379,password=from-the-secret"
    assert str(config.registry.path) == "gs://acme-ml-kfp/feast/registry.db"
    _assert_matches_plan(example, contents, "kfp-gke")


def test_kubeflow_repo_with_a_bigquery_offline_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("google.cloud.bigquery")  # Feast's BigQuery offline store config imports it
    pytest.importorskip("redis")
    folder = tmp_path / "churn"
    shutil.copytree(ROOT / "examples" / "churn", folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    profile = _kubeflow_profile(folder, "gcp-prod", "  feature_store:\n    offline: {kind: bigquery, options: {project_id: acme-growth-prod, location: US}}\n")
    for other in ("kfp-gke", "aws-prod", "azure-prod"):  # the spec's overrides name them
        shutil.copy(ROOT / "targets" / f"{other}.yaml", folder / "targets" / f"{other}.yaml")
    files = build(folder / "mlcompile.yaml", profile)
    config, contents = _load_with_feast(_write(files, tmp_path / "build"), monkeypatch)
    assert config.offline_store.type == "bigquery" and config.offline_store.project_id == "acme-growth-prod"
    assert config.online_store.type == "redis" and config.provider == "gcp"
    assert config.registry.path == "gs://acme-ml-kfp/pipeline-root/feast/churn_prediction/registry.db"  # the default: beside the pipeline root
    tables = {s.name: s.table for s in contents.data_sources}
    assert tables == {"customer_activity_daily": "acme-growth-prod.crm.customer_activity_daily"}
    _assert_matches_plan("churn", contents, "gcp-prod", folder / "mlcompile.yaml", profile)


def _assert_matches_plan(example: str, contents, profile_name: str, spec: Path | None = None, profile: Path | None = None) -> None:
    """Feast found exactly the spec's entities, views (ttl, online, dtypes) and the feature
    service of the training features, and each object is valid and serialisable."""
    import feast.types

    from mlcompile.build import compile_system, resolve_profiles

    spec = spec or ROOT / "examples" / example / "mlcompile.yaml"
    profile = profile or ROOT / "targets" / f"{profile_name}.yaml"
    (result,) = compile_system(str(spec), resolve_profiles(str(spec), [str(profile)]), render=False, git_commit=None).results
    plan = result.plan
    # Feast's parser adds its own `__dummy` entity (for entity-less views): not ours
    assert sorted(e.name for e in contents.entities if not e.name.startswith("__")) == sorted(e.name for e in plan.features.entities)
    views = {v.name: v for v in contents.feature_views}
    assert sorted(views) == sorted(v.name for v in plan.features.views)
    for view in plan.features.views:
        found = views[view.name]
        found.ensure_valid()
        assert found.ttl.total_seconds() == view.ttl_seconds and found.online == view.online
        assert {f.name: f.dtype for f in found.schema} == {f.name: getattr(feast.types, feast_repo.FEAST_TYPES[f.dtype]) for f in view.features}
        assert found.entities == list(view.entities)
        assert found.to_proto().spec.name == view.name
    (service,) = contents.feature_services
    served = {f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features}
    assert served == set(plan.training.step("extract-features").params["features"])
    for source in contents.data_sources:
        assert source.to_proto().name == source.name  # serialisable as the registry stores it


# ------------------------------------------------------------------ located refusals


def test_a_source_the_offline_store_cannot_read_is_a_located_error(tmp_path: Path) -> None:
    folder = tmp_path / "sys"
    shutil.copytree(ROOT / "examples" / "churn", folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    spec = folder / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("customer_activity_daily.parquet, format: parquet}", "customer_activity_daily.csv, format: csv}"))
    profile = _kubeflow_profile(folder, "kfp-gke", "")
    for other in ("gcp-prod", "aws-prod", "azure-prod"):
        shutil.copy(ROOT / "targets" / f"{other}.yaml", folder / "targets" / f"{other}.yaml")
    with pytest.raises(SpecError) as caught:
        build(spec, profile)
    (error,) = [d for d in caught.value.diagnostics if d.severity == "error"]
    # at the override that gave this profile the csv file
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if "customer_activity_daily.csv, format: csv}" in text)
    assert (Path(error.file).name, error.line, error.path) == ("mlcompile.yaml", line, "features.sources[0].uri")
    assert "Feast's file offline store reads parquet files, not csv" in error.message and "(target kubeflow)" in error.message


def test_a_dtype_the_offline_store_cannot_hold_is_a_located_error(tmp_path: Path) -> None:
    folder = tmp_path / "ranker"
    shutil.copytree(ROOT / "examples" / "ranker-gpu", folder, ignore=shutil.ignore_patterns(".mlcompile"))
    profile = _kubeflow_profile(folder, "gcp-prod", "  feature_store:\n    offline: {kind: bigquery}\n")
    for other in ("kfp-gke", "aws-prod", "azure-prod"):
        shutil.copy(ROOT / "targets" / f"{other}.yaml", folder / "targets" / f"{other}.yaml")
    with pytest.raises(SpecError) as caught:
        build(folder / "mlcompile.yaml", profile)
    errors = {d.path: d.message for d in caught.value.diagnostics if d.severity == "error"}
    text = (folder / "mlcompile.yaml").read_text()
    views = [v for v in ("user_engagement", "item_popularity", "query_context")]
    index = {v: i for i, v in enumerate(sorted(views, key=lambda v: text.index(f"name: {v}")))}
    assert set(errors) == {f"features.views[{index['item_popularity']}].features[3].dtype", f"features.views[{index['query_context']}].features[0].dtype"}
    assert any("rating_avg' is float32: BigQuery has no 32-bit float" in m for m in errors.values())
    assert any("query_tokens' is int32: BigQuery has no 32-bit integer" in m for m in errors.values())


def test_a_literal_credential_in_the_store_options_is_refused(tmp_path: Path) -> None:
    from mlcompile.targets.kubeflow.settings import KubeflowFeatureStore

    with pytest.raises(ValueError, match="options.password carries a credential"):
        KubeflowFeatureStore.model_validate({"online": {"kind": "redis", "options": {"connection_string": "redis:6379", "password": "hunter2"}}})
    with pytest.raises(ValueError, match="write it password=secret://NAME"):
        KubeflowFeatureStore.model_validate({"online": {"kind": "redis", "options": {"connection_string": "redis:6379,password=hunter2"}}})


# ------------------------------------------------------------------ the local loop


def _leaky_system(folder: Path) -> Path:
    """Each customer has snapshots before its label (noise), one after it that shows the
    label (what a join that sees the future would copy), and some customers have only a
    snapshot older than the ttl (10 days) or one at exactly the label time."""
    import random

    rng = random.Random(3)
    t0 = pd.Timestamp("2024-03-01T00:00:00Z")
    day = pd.Timedelta(days=1)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    snapshots, labels = ["customer_id,event_ts,signal"], ["customer_id,label_ts,churned"]
    for i in range(120):
        label_ts = t0 + rng.randint(20, 40) * day
        churned = int(rng.random() < 0.4)
        for days_before in (rng.randint(1, 8), rng.randint(12, 19)):
            snapshots.append(f"c{i:04d},{iso(label_ts - days_before * day)},{rng.random():.4f}")
        snapshots.append(f"c{i:04d},{iso(label_ts + rng.randint(1, 5) * day)},{float(churned)}")
        labels.append(f"c{i:04d},{iso(label_ts)},{churned}")
    snapshots.append(f"stale,{iso(t0)},0.5")
    labels.append(f"stale,{iso(t0 + 11 * day)},0")
    snapshots.append(f"exact,{iso(t0 + 30 * day)},0.25")
    labels.append(f"exact,{iso(t0 + 30 * day)},1")
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "snapshots.csv").write_text("\n".join(snapshots) + "\n")
    (folder / "data" / "labels.csv").write_text("\n".join(labels) + "\n")
    (folder / "targets").mkdir()
    (folder / "targets" / "local.yaml").write_text("apiVersion: mlcompile/v1\nkind: Target\nmetadata: {name: local}\nplatform: local\n")
    (folder / "mlcompile.yaml").write_text(
        "apiVersion: mlcompile/v1\nkind: MLSystem\nmetadata: {name: leaky}\n"
        "features:\n  entities: [{name: customer, join_keys: [customer_id]}]\n  sources:\n"
        "    - {name: snapshots, uri: file://data/snapshots.csv, format: csv, timestamp_field: event_ts}\n"
        "    - {name: labels, uri: file://data/labels.csv, format: csv, timestamp_field: label_ts}\n"
        "  views:\n    - {name: activity, entities: [customer], source: snapshots, ttl: 10d, online: true, features: [{name: signal, dtype: float64}]}\n"
        "training:\n  dataset: {features: ['activity:signal'], label: {source: labels, column: churned}}\n"
        "  trainer: {sklearn: {estimator: sklearn.linear_model.LogisticRegression}}\n  evaluation: {metrics: [roc_auc]}\n"
        "registry: {model: leaky-model}\n"
    )
    return folder / "mlcompile.yaml"


def test_feast_training_set_is_point_in_time_correct_and_equals_the_runtime_join(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """extract-features through Feast's get_historical_features: no snapshot newer than the
    label, none older than the ttl, the newest allowed one; row for row what the runtime's
    own join (tests/test_runtime_pit.py) gives."""
    from mlcompile.local.executor import write_feast_repo
    from mlcompile.local.run import prepare
    from mlcompile.plan.step_config import step_config
    from mlcompile.runtime.data_steps import extract_features
    from mlcompile.runtime.features import FeatureStore
    from mlcompile.runtime.io import read_table, table_metadata

    spec = _leaky_system(tmp_path / "leaky")
    prepared = prepare(str(spec), str(spec.parent / "targets" / "local.yaml"))
    monkeypatch.setenv("MLCOMPILE_SPEC_DIR", str(spec.parent))
    repo = tmp_path / "feature_repo"
    write_feast_repo(prepared.plan, repo)
    config = step_config(prepared.plan, prepared.plan.training.step("extract-features"))
    outputs = {name: str(tmp_path / "out" / f"{name}.parquet") for name in ("train", "test")}
    result = extract_features({**config, "feast": {"repo": str(repo)}}, {}, outputs)
    assert result["join"] == "feast" and table_metadata(outputs["train"])["join"] == "feast"
    dataset = pd.concat([read_table(outputs["train"]), read_table(outputs["test"])])
    snapshots = pd.read_csv(spec.parent / "data" / "snapshots.csv", parse_dates=["event_ts"])
    for row in dataset.itertuples():
        allowed = snapshots[
            (snapshots.customer_id == row.customer_id) & (snapshots.event_ts <= row.label_ts) & (snapshots.event_ts >= row.label_ts - pd.Timedelta(days=10))
        ]
        expected = allowed.sort_values("event_ts").signal.iloc[-1] if len(allowed) else None
        assert (pd.isna(row.signal) and expected is None) or row.signal == expected, row
    by_customer = dataset.set_index("customer_id")
    assert pd.isna(by_customer.loc["stale", "signal"]) and by_customer.loc["exact", "signal"] == 0.25
    regular = dataset[~dataset.customer_id.isin(["stale", "exact"])]
    assert (regular.signal != regular.churned).mean() > 0.95  # nothing of the label got through
    store = FeatureStore(config["features"])
    labels = store.source("labels")
    feast_join = dataset.set_index("customer_id").signal.sort_index()
    runtime_join = store.join(labels, "label_ts", store.specs(["activity:signal"]))[0].set_index("customer_id").signal.sort_index()
    pd.testing.assert_series_equal(feast_join, runtime_join, check_names=False)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MLflow's SQLAlchemy mappers, read in this process
@pytest.mark.usefixtures("process_state")
def test_training_serving_consistency_on_the_churn_example(tmp_path: Path) -> None:
    """After `mlcompile run`, `mlcompile serve` reads each customer's features from the
    online store Feast materialised: equal to the newest offline values within each view's
    ttl; a customer whose newest snapshot is older than a view's ttl reads None there."""
    import json
    import os

    from click.testing import CliRunner
    from starlette.testclient import TestClient

    from mlcompile.cli import main
    from mlcompile.local.run import prepare
    from mlcompile.local.serve import create_app
    from mlcompile.runtime.features import FeatureStore
    from mlcompile.runtime.online import reader_for

    folder = tmp_path / "churn"
    shutil.copytree(ROOT / "examples" / "churn", folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    shutil.copytree(ROOT / "targets", folder / "targets")
    activity = folder / "data" / "activity.csv"
    # C999998's only snapshot is 60 days before the newest: past customer_activity's ttl (30d),
    # within customer_profile's (90d)
    activity.write_text(activity.read_text() + "C999998,2024-03-01T06:00:00Z,plus,400,7,321.5,2\n")
    spec, profile = folder / "mlcompile.yaml", folder / "targets" / "local.yaml"
    done = CliRunner().invoke(main, ["run", str(spec), "--target", str(profile), "--only", "training", "--format", "json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    steps = {s["name"]: s for p in summary["pipelines"] for s in p["steps"]}
    assert steps["materialize-features"]["status"] == "succeeded" and steps["extract-features"]["status"] == "succeeded"
    windows = summary["feature_store"]["materialized"]
    assert windows["customer_activity"] == {"start": "2024-03-31T06:00:00+00:00", "end": "2024-04-30T06:00:01+00:00"}  # ttl 30d up to the newest snapshot

    prepared = prepare(str(spec), str(profile))
    app = create_app(prepared)
    assert app.state.online == "feast"
    refs = prepared.plan.training.step("extract-features").params["features"]
    # the offline truth, computed by the runtime's own join as of the data's newest snapshot
    os.environ["MLCOMPILE_SPEC_DIR"] = str(folder)  # (process_state restores the environment)
    store = FeatureStore(_features(prepared.plan))
    snapshots = store.source("customer_activity_daily")
    customers = sorted(set(snapshots.customer_id))
    events = pd.DataFrame({"customer_id": customers, "as_of": snapshots.event_ts.max()})
    specs = store.specs(refs)
    offline, _ = store.join(events, "as_of", specs)
    reader = reader_for({"kind": "feast", "repo": str(prepared.workdir / "feature_repo"), "entity_keys": ["customer_id"], "features": refs})
    online = reader.read([{"customer_id": c} for c in customers], refs)
    assert len(customers) > 200
    for customer, row, expected in zip(customers, online, offline.itertuples()):
        for spec_ in specs:
            want = getattr(expected, spec_.column)
            got = row[spec_.ref]
            if got is None or pd.isna(want):
                assert got is None and pd.isna(want), (customer, spec_.ref, got, want)
            else:
                assert got == (want if isinstance(want, str) else pytest.approx(want)), (customer, spec_.ref, got, want)
    stale = online[customers.index("C999998")]
    assert [stale[r] for r in refs if r.startswith("customer_activity:")] == [None, None, None]
    assert stale["customer_profile:plan"] == "plus" and stale["customer_profile:tenure_days"] == 400

    # the server: features by entity key give the prediction the offline values give
    client = TestClient(app)
    answer = client.post("/predict", json={"entities": [{"customer_id": customers[0]}, {"customer_id": "C999998"}]})
    assert answer.status_code == 200, answer.text
    first = offline.iloc[0]
    instances = [
        {s.column: (None if pd.isna(first[s.column]) else first[s.column].item() if hasattr(first[s.column], "item") else first[s.column]) for s in specs}
    ]
    same = client.post("/predict", json={"instances": instances}).json()
    assert answer.json()["scores"][0] == pytest.approx(same["scores"][0])
    assert reader.read([{"customer_id": "nobody"}], refs) == [dict.fromkeys(refs)]  # an unknown entity: nothing stored
    assert client.post("/predict", json={"entities": [{"id": 1}]}).status_code == 400  # no entity key


@pytest.fixture()
def process_state():
    """`mlcompile run` (in this process) and create_app point the environment and MLflow's
    default tracking and registry URIs at the run's workdir: put them back afterwards, for
    the tests that run after this one."""
    import os

    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    environ, registry, tracking = dict(os.environ), registry_utils._registry_uri, tracking_utils._tracking_uri
    yield
    os.environ.clear()
    os.environ.update(environ)
    registry_utils._registry_uri, tracking_utils._tracking_uri = registry, tracking


def _features(plan) -> dict:
    from mlcompile.plan.serialize import plan_to_data

    features = plan_to_data(plan)["features"]
    for item in (*features["sources"], *features["views"]):
        item.pop("origin", None)
    return features


# ------------------------------------------------------------------ kubeflow: materialisation and serving


def test_kubeflow_materialises_each_refresh_cadence_on_its_own_recurring_run() -> None:
    """ranker-gpu has online views refreshed daily (user_engagement, ttl 7d) and hourly
    (item_popularity, ttl 2d); query_context is offline and never materialised."""
    import json

    import yaml

    files = build(ROOT / "examples" / "ranker-gpu" / "mlcompile.yaml", ROOT / "targets" / "kfp-gke.yaml")
    crons = {p: json.loads(c)["trigger"]["cron_schedule"]["cron"] for p, (k, c) in files.items() if k == "kfp.recurring_run" and "materialize" in p}
    assert crons == {"schedules/search-ranker-materialize-daily.json": "0 0 0 * * *", "schedules/search-ranker-materialize-hourly.json": "0 0 * * * *"}
    spec = yaml.safe_load(files["pipelines/search-ranker-materialize-hourly.yaml"][1].decode().split("\n---\n")[0])
    (executor,) = spec["deploymentSpec"]["executors"].values()
    container = executor["container"]
    assert container["command"] == ["python", "-m", "mlcompile.runtime", "materialize-features"]
    config = json.loads(container["args"][container["args"].index("--config") + 1])
    assert config["params"] == {"mode": "incremental", "views": ["item_popularity"]}
    # the task carries the repository itself: the same bytes as the build's feature_repo/
    assert config["feast"]["files"] == {p.split("/")[-1]: c.decode() for p, (k, c) in files.items() if k.startswith("feast.")}
    assert config["features"]["views"]  # what the runtime step reads its sources with


def test_kubeflow_serving_reads_features_by_entity_key_from_the_online_store() -> None:
    import json

    import yaml

    files = build(ROOT / "examples" / "churn" / "mlcompile.yaml", ROOT / "targets" / "kfp-gke.yaml")
    isvc = yaml.safe_load(files["serving/inference-service.yaml"][1])
    env = {e["name"]: e for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    online = json.loads(env["MLCOMPILE_ONLINE_FEATURES"]["value"])
    assert online["kind"] == "feast" and online["entity_keys"] == ["customer_id"]
    assert online["features"][0] == "customer_activity:orders_30d" and len(online["features"]) == 5
    assert online["feature_store_yaml"] == files["feature_repo/feature_store.yaml"][1].decode()
    assert env["MLCOMPILE_SECRET_FEAST_REDIS_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "feast-redis-password", "key": "value"}}
    assert online["request_features"] == []
    # ranker-gpu's model also reads an offline view (query_context): the request carries those,
    # the store serves the rest
    ranker = build(ROOT / "examples" / "ranker-gpu" / "mlcompile.yaml", ROOT / "targets" / "kfp-gke.yaml")
    predictor = yaml.safe_load(ranker["serving/inference-service.yaml"][1])["spec"]["predictor"]
    mixed = json.loads({e["name"]: e for e in predictor["containers"][0]["env"]}["MLCOMPILE_ONLINE_FEATURES"]["value"])
    assert mixed["request_features"] and all(r.startswith("query_context:") for r in mixed["request_features"])
    assert mixed["features"] and not any(r.startswith("query_context:") for r in mixed["features"])


def test_the_cluster_materialisation_step_and_the_serving_reader_from_feature_store_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the kubeflow task and serving container do, on this machine: the step gets the
    repository's files in its config (`feast.files`), applies them and runs Feast's
    materialize-incremental up to now; the reader, given only feature_store.yaml, finds the
    definitions in the registry and reads the newest value within the ttl (None past it)."""
    from mlcompile.local.run import prepare
    from mlcompile.plan.step_config import step_config
    from mlcompile.runtime.feast_store import materialize_features
    from mlcompile.runtime.online import reader_for
    from mlcompile.targets.kubeflow.feature_store import materialization

    spec = _leaky_system(tmp_path / "leaky")
    plan = prepare(str(spec), str(spec.parent / "targets" / "local.yaml")).plan
    # the local build's repository, its data paths made absolute (a cluster's are gs:// URIs)
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    files = {
        Path(f.path).name: f.content.decode().replace('"data/', f'"{store_dir}/').replace("'data/", f"'{store_dir}/").replace(": data/", f": {store_dir}/")
        for f in feast_repo.render(plan)
    }
    now = pd.Timestamp.now(tz="UTC").floor("s")
    pd.DataFrame({
        "customer_id": ["fresh", "fresh", "stale"],
        "event_ts": [now - pd.Timedelta(hours=5), now - pd.Timedelta(hours=1), now - pd.Timedelta(days=20)],
        "signal": [0.1, 0.2, 0.9],
    }).to_parquet(store_dir / "snapshots.parquet")  # fmt: skip
    (pipeline,) = materialization(plan).pipelines
    step = pipeline.steps[0]
    monkeypatch.setenv("MLCOMPILE_SPEC_DIR", str(spec.parent))
    result = materialize_features({**step_config(plan, step), "feast": {"files": files}}, {}, {})
    assert result["mode"] == "incremental" and result["views"] == ["activity"]
    reader = reader_for({"kind": "feast", "feature_store_yaml": files["feature_store.yaml"], "entity_keys": ["customer_id"], "features": ["activity:signal"]})
    assert reader.read([{"customer_id": "fresh"}, {"customer_id": "stale"}], ["activity:signal"]) == [{"activity:signal": 0.2}, {"activity:signal": None}]


def test_a_pipeline_root_feast_cannot_keep_its_registry_under_needs_an_explicit_registry() -> None:
    from mlcompile.targets.kubeflow.settings import KubeflowSettings

    base = {"host": "https://kfp.example", "namespace": "ml", "pipeline_root": "minio://mlpipeline/root"}
    with pytest.raises(ValueError, match="set feature_store.registry to a gs:// or s3:// path"):
        KubeflowSettings.model_validate(base)
    KubeflowSettings.model_validate({**base, "feature_store": {"registry": "s3://ml-feast/registry.db"}})
