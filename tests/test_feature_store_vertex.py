"""Online feature views on Vertex AI Feature Store: the online store, feature groups, features
and feature views a vertex build writes — each parsed strictly into its aiplatform_v1 request
type — carry the spec's sources, keys, features and refresh cadence; what the store cannot
hold is refused at the spec; the endpoint's model reads its features through
FetchFeatureValues, checked here against a local stand-in of the Vertex AI REST API."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from requires import require

require("kfp", "google.cloud.aiplatform")

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from build_support import ROOT, build  # noqa: E402
from json_service import JsonService  # noqa: E402

from mlcompile.errors import SpecError  # noqa: E402
from mlcompile.runtime.online import reader_for  # noqa: E402
from mlcompile.targets.vertex.feature_store import parse_strict  # noqa: E402

PROFILE = ROOT / "targets" / "gcp-prod.yaml"
STORE = "projects/acme-ml-prod/locations/us-central1/featureOnlineStores"


@pytest.fixture(scope="module")
def churn() -> dict[str, tuple[str, bytes]]:
    return build(ROOT / "examples/churn/mlcompile.yaml", PROFILE)


@pytest.fixture(scope="module")
def ranker() -> dict[str, tuple[str, bytes]]:
    return build(ROOT / "examples/ranker-gpu/mlcompile.yaml", PROFILE)


def body(files: dict[str, tuple[str, bytes]], path: str) -> Any:
    kind, content = files[path]
    return parse_strict(kind, json.loads(content))


def online_config(files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
    model = json.loads(files["vertex/model.json"][1])["model"]
    (env,) = [e for e in model["containerSpec"]["env"] if e["name"] == "MLCOMPILE_ONLINE_FEATURES"]
    return json.loads(env["value"])


def test_each_online_view_gets_a_feature_group_its_features_and_a_feature_view(churn: dict, ranker: dict) -> None:
    assert sorted((p, k) for p, (k, _) in churn.items() if "feature-store" in p) == [
        ("vertex/feature-store/feature-groups/customer_activity.json", "vertex.create_feature_group_request"),
        ("vertex/feature-store/feature-groups/customer_profile.json", "vertex.create_feature_group_request"),
        ("vertex/feature-store/feature-views/customer_activity.json", "vertex.create_feature_view_request"),
        ("vertex/feature-store/feature-views/customer_profile.json", "vertex.create_feature_view_request"),
        ("vertex/feature-store/features/customer_activity.json", "vertex.batch_create_features_request"),
        ("vertex/feature-store/features/customer_profile.json", "vertex.batch_create_features_request"),
        ("vertex/feature-store/online-store.json", "vertex.create_feature_online_store_request"),
    ]
    # query_context is offline only: nothing of it reaches the online store
    assert not [p for p in ranker if "query_context" in p]
    batch = build(ROOT / "examples/batch-scoring/mlcompile.yaml", PROFILE)
    assert not [p for p in batch if "feature-store" in p]  # no online view, no store


def test_every_feature_store_body_parses_strictly_and_a_typo_does_not(churn: dict, ranker: dict) -> None:
    for files in (churn, ranker):
        for path, (kind, content) in files.items():
            if "feature-store" in path:
                parse_strict(kind, json.loads(content))
    view = json.loads(churn["vertex/feature-store/feature-views/customer_activity.json"][1])
    view["featureView"]["syncConfig"]["cronn"] = view["featureView"]["syncConfig"].pop("cron")
    with pytest.raises(Exception, match="cronn"):
        parse_strict("vertex.create_feature_view_request", view)


def test_the_online_store_is_one_autoscaled_bigtable_store_per_system(churn: dict) -> None:
    request = body(churn, "vertex/feature-store/online-store.json")
    assert request.parent == "projects/acme-ml-prod/locations/us-central1"
    assert request.feature_online_store_id == "churn_prediction"
    scaling = request.feature_online_store.bigtable.auto_scaling
    assert (scaling.min_node_count, scaling.max_node_count, scaling.cpu_utilization_target) == (1, 3, 50)
    assert request.feature_online_store.labels["mlcompile-system"] == "churn-prediction"


def test_a_feature_group_reads_the_views_bigquery_table_by_its_join_keys_as_of_its_timestamp(churn: dict) -> None:
    request = body(churn, "vertex/feature-store/feature-groups/customer_activity.json")
    assert request.feature_group_id == "churn_prediction_customer_activity"
    source = request.feature_group.big_query
    assert source.big_query_source.input_uri == "bq://acme-growth-prod.crm.customer_activity_daily"
    assert list(source.entity_id_columns) == ["customer_id"]
    assert source.time_series.timestamp_column == "event_ts"
    features = body(churn, "vertex/feature-store/features/customer_activity.json")
    assert features.parent == "projects/acme-ml-prod/locations/us-central1/featureGroups/churn_prediction_customer_activity"
    assert [(r.feature_id, r.feature.version_column_name, r.feature.description) for r in features.requests] == [
        ("orders_30d", "orders_30d", "int64 (BigQuery INT64)"),
        ("spend_30d", "spend_30d", "float64 (BigQuery FLOAT64)"),
        ("support_tickets_30d", "support_tickets_30d", "int64 (BigQuery INT64)"),
    ]


def test_a_feature_view_syncs_exactly_the_views_features_on_its_refresh_cadence(churn: dict, ranker: dict) -> None:
    request = body(churn, "vertex/feature-store/feature-views/customer_profile.json")
    assert request.parent == f"{STORE}/churn_prediction"
    assert request.feature_view_id == "customer_profile"
    assert request.run_sync_immediately  # serving finds values before the first scheduled sync
    (group,) = request.feature_view.feature_registry_source.feature_groups
    assert (group.feature_group_id, list(group.feature_ids)) == ("churn_prediction_customer_profile", ["plan", "tenure_days"])
    # ttl 90d → daily; ranker's item_popularity (ttl 2d) → hourly, user_engagement (7d) → daily
    assert request.feature_view.sync_config.cron == "TZ=UTC 0 0 * * *"
    assert body(ranker, "vertex/feature-store/feature-views/item_popularity.json").feature_view.sync_config.cron == "TZ=UTC 0 * * * *"
    assert body(ranker, "vertex/feature-store/feature-views/user_engagement.json").feature_view.sync_config.cron == "TZ=UTC 0 0 * * *"


def test_the_profile_chooses_an_optimized_store_and_its_id(tmp_path: Path) -> None:
    # beside the other profiles, which the example's overrides name
    shutil.copytree(ROOT / "targets", tmp_path / "targets")
    profile = tmp_path / "targets" / "gcp-prod.yaml"
    data = yaml.safe_load(PROFILE.read_text())
    data["vertex"]["feature_store"] = {"storage": "optimized", "online_store_id": "growth_online"}
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    files = build(ROOT / "examples/churn/mlcompile.yaml", profile)
    request = body(files, "vertex/feature-store/online-store.json")
    assert request.feature_online_store_id == "growth_online"
    assert "optimized" in json.loads(files["vertex/feature-store/online-store.json"][1])["featureOnlineStore"]
    assert body(files, "vertex/feature-store/feature-views/customer_profile.json").parent == f"{STORE}/growth_online"
    assert online_config(files)["storage"] == "optimized"


def test_the_endpoints_model_reads_its_online_features_by_entity_key(churn: dict, ranker: dict) -> None:
    config = online_config(churn)
    assert config["kind"] == "vertex" and config["entity_keys"] == ["customer_id"]
    assert config["features"] == [
        "customer_activity:orders_30d",
        "customer_activity:spend_30d",
        "customer_activity:support_tickets_30d",
        "customer_profile:plan",
        "customer_profile:tenure_days",
    ]
    assert config["views"]["customer_profile"]["feature_view"] == f"{STORE}/churn_prediction/featureViews/customer_profile"
    # the ranker's query features come with the request (their view is offline)
    ranker_config = online_config(ranker)
    assert ranker_config["entity_keys"] == ["user_id", "item_id"]
    assert not [f for f in ranker_config["features"] if f.startswith("query_context:")]


# ------------------------------------------------------------------ refusals


def refusals(tmp_path: Path, *replacements: tuple[str, str]) -> list[str]:
    text = (ROOT / "examples/churn/mlcompile.yaml").read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError) as caught:
        build(spec, PROFILE)
    return [d.render() for d in caught.value.diagnostics if d.severity == "error"]


def test_a_timestamp_feature_is_refused_where_the_view_declares_it(tmp_path: Path) -> None:
    (error,) = refusals(tmp_path, ('{name: plan, dtype: string, description: "basic | plus | pro"}', "{name: plan, dtype: timestamp}"))
    assert error == (
        f"{tmp_path / 'mlcompile.yaml'}:52:7: error: features.views[1].features[0].dtype: feature 'customer_profile:plan' has dtype timestamp: "
        "Vertex AI Feature Store serves BOOL, INT64, FLOAT64 and STRING values, no timestamp (target vertex)\n"
        "  hint: store it as int64 (e.g. epoch seconds) or string (ISO 8601) in the source and declare that dtype"
    )


def test_an_online_view_whose_name_starts_with_a_digit_is_refused(tmp_path: Path) -> None:
    (error,) = refusals(tmp_path, ("customer_profile", "90d_profile"))
    assert error.startswith(
        f"{tmp_path / 'mlcompile.yaml'}:52:7: error: features.views[1].name: view '90d_profile' cannot be named '90d_profile' in Vertex AI Feature Store: "
        "ids are lowercase letters, digits and '_', not starting with a digit, at most 60 characters (target vertex)"
    )


def test_an_online_view_over_files_is_refused_at_the_sources_uri(tmp_path: Path) -> None:
    (error,) = refusals(
        tmp_path,
        (
            "{name: customer_activity_daily, uri: bq://acme-growth-prod.crm.customer_activity_daily, format: table}",
            "{name: customer_activity_daily, uri: gs://acme-growth-lake/crm/customer_activity_daily.parquet, format: parquet}",
        ),
    )
    first, hint = error.split("\n")
    assert first.startswith(f"{tmp_path / 'mlcompile.yaml'}:")
    assert first.split(": ", 1)[1] == (
        "error: features.sources[0].uri: online view 'customer_activity', 'customer_profile' reads source 'customer_activity_daily' from "
        "gs://acme-growth-lake/crm/customer_activity_daily.parquet: Vertex AI Feature Store syncs online views from BigQuery tables only (target vertex)"
    )
    assert hint == "  hint: override the source's uri for profile 'gcp-prod' with a bq:// table (a BigQuery external table over the files will do)"


def test_an_offline_view_over_files_needs_no_feature_store(tmp_path: Path) -> None:
    text = (ROOT / "examples/churn/mlcompile.yaml").read_text().replace("online: true ", "online: false").replace("online: true", "online: false")
    text = text.replace("uri: bq://acme-growth-prod.crm.customer_activity_daily, format: table", "uri: gs://acme-growth-lake/a.parquet, format: parquet")
    (tmp_path / "mlcompile.yaml").write_text(text)
    files = build(tmp_path / "mlcompile.yaml", PROFILE)
    assert not [p for p in files if "feature-store" in p]
    assert "env" not in json.loads(files["vertex/model.json"][1])["model"]["containerSpec"]


# ------------------------------------------------------------------ the reader


class FeatureOnlineStoreStandIn(JsonService):
    """FetchFeatureValues of the Vertex AI REST API (v1) over rows held in memory; every
    request body is parsed strictly into FetchFeatureValuesRequest."""

    def __init__(self, rows: dict[tuple[str, str], dict[str, dict[str, Any]]]):
        self.rows = rows  # (feature view name, key) → {feature id: FeatureValue JSON}
        self.requests: list[Any] = []
        super().__init__()

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        from google.cloud.aiplatform_v1 import types as gca
        from google.protobuf import json_format

        if method != "POST" or not url.path.endswith(":fetchFeatureValues"):
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": f"no {method} {url.path}"}}
        view = url.path.removeprefix("/v1/").removesuffix(":fetchFeatureValues")
        request = gca.FetchFeatureValuesRequest.pb()()
        json_format.ParseDict(json.loads(raw), request, ignore_unknown_fields=False)
        self.requests.append((view, request))
        key = request.data_key.key or "|".join(request.data_key.composite_key.parts)
        values = self.rows.get((view, key))
        if values is None:
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": f"entity {key} not found"}}
        return 200, {"keyValues": {"features": [{"name": k, "value": v} for k, v in values.items()]}}


def test_the_reader_fetches_each_entity_from_each_feature_view(churn: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    config = online_config(churn)
    activity = config["views"]["customer_activity"]["feature_view"]
    profile = config["views"]["customer_profile"]["feature_view"]
    rows = {
        (activity, "C1"): {"orders_30d": {"int64Value": "3"}, "spend_30d": {"doubleValue": 41.5}, "support_tickets_30d": {"int64Value": "0"}},
        (profile, "C1"): {"plan": {"stringValue": "pro"}, "tenure_days": {"int64Value": "400"}},
        (profile, "C2"): {"plan": {"stringValue": "basic"}},  # tenure unknown, no activity row
    }
    with FeatureOnlineStoreStandIn(rows) as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        reader = reader_for(config)
        got = reader.read([{"customer_id": "C1"}, {"customer_id": "C2"}], config["features"])
    assert got == [
        {
            "customer_activity:orders_30d": 3,
            "customer_activity:spend_30d": 41.5,
            "customer_activity:support_tickets_30d": 0,
            "customer_profile:plan": "pro",
            "customer_profile:tenure_days": 400,
        },
        {
            "customer_activity:orders_30d": None,
            "customer_activity:spend_30d": None,
            "customer_activity:support_tickets_30d": None,
            "customer_profile:plan": "basic",
            "customer_profile:tenure_days": None,
        },
    ]
    assert [(view.rsplit("/", 1)[1], r.data_key.key, r.data_format) for view, r in api.requests] == [
        ("customer_activity", "C1", 1),  # KEY_VALUE
        ("customer_profile", "C1", 1),
        ("customer_activity", "C2", 1),
        ("customer_profile", "C2", 1),
    ]


def test_the_reader_refuses_an_entity_without_its_key(churn: dict) -> None:
    from mlcompile.runtime.online.vertex import VertexReader

    reader = VertexReader(online_config(churn), client=object())  # refused before any call
    with pytest.raises(ValueError, match="no customer_id"):
        reader.read([{"user": "C1"}], ["customer_profile:plan"])


# ------------------------------------------------------------------ deploy (stand-in)


def test_deploy_creates_the_feature_store_once_and_follows_a_new_cadence(tmp_path: Path) -> None:
    import os

    from cli_support import mlcompile
    from vertex_api import VertexStandIn

    def deploy(spec: Path, endpoint: str) -> list[str]:
        command = ["deploy", str(spec), "-t", str(PROFILE), "--yes", "--git-commit", "none"]
        done = mlcompile(command, env={**os.environ, "MLCOMPILE_VERTEX_API_ENDPOINT": endpoint, "NO_PROXY": "127.0.0.1"})
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.splitlines()

    spec = ROOT / "examples/churn/mlcompile.yaml"
    with VertexStandIn() as api:
        first = deploy(spec, api.endpoint)
        assert "create feature online store churn_prediction: bigtable" in first
        assert "create feature group churn_prediction_customer_activity: bq://acme-growth-prod.crm.customer_activity_daily" in first
        assert "create features of group churn_prediction_customer_profile: plan, tenure_days" in first
        assert "create feature view customer_profile: TZ=UTC 0 0 * * *" in first
        view = api.feature_store[f"{STORE}/churn_prediction/featureViews/customer_profile"]
        assert view["featureRegistrySource"]["featureGroups"] == [
            {"featureGroupId": "churn_prediction_customer_profile", "featureIds": ["plan", "tenure_days"]}
        ]

        second = deploy(spec, api.endpoint)
        assert [line for line in second if not line.startswith("unchanged ")] == []

        # a 2-day ttl is refreshed hourly: the view's sync cadence is updated in place
        changed = tmp_path / "mlcompile.yaml"
        changed.write_text(spec.read_text().replace("ttl: 90d", "ttl: 2d"))
        third = deploy(changed, api.endpoint)
        assert "update feature view customer_profile: TZ=UTC 0 * * * *" in third
        assert api.feature_store[f"{STORE}/churn_prediction/featureViews/customer_profile"]["syncConfig"] == {"cron": "TZ=UTC 0 * * * *"}


def test_a_view_keyed_by_two_columns_is_fetched_by_a_composite_key(monkeypatch: pytest.MonkeyPatch) -> None:
    view = f"{STORE}/search_ranker/featureViews/user_item_affinity"
    config = {
        "kind": "vertex",
        "region": "us-central1",
        "storage": "bigtable",
        "entity_keys": ["user_id", "item_id"],
        "features": ["user_item_affinity:clicks_30d"],
        "views": {"user_item_affinity": {"feature_view": view, "join_keys": ["user_id", "item_id"], "features": {"clicks_30d": "clicks_30d"}}},
    }
    with FeatureOnlineStoreStandIn({(view, "U1|9"): {"clicks_30d": {"int64Value": "4"}}}) as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        got = reader_for(config).read([{"user_id": "U1", "item_id": 9}], config["features"])
    assert got == [{"user_item_affinity:clicks_30d": 4}]
    ((_, request),) = api.requests
    assert list(request.data_key.composite_key.parts) == ["U1", "9"]
