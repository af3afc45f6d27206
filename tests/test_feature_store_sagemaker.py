"""Online feature views on SageMaker Feature Store: the CreateFeatureGroup requests of a
sagemaker build (checked against botocore's request shape) carry the spec's keys, event time,
dtypes and ttl; a materialisation pipeline per online view runs the runtime's `materialize`
step on the view's refresh cadence; what a feature group cannot hold is refused at the spec.
The runtime's writer (PutRecord) and the serving reader (BatchGetRecord) are run against a
local stand-in of the sagemaker-featurestore-runtime REST API (moto has none), and every
request it receives is validated against botocore's service model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
from cli_support import mlcompile
from requires import require

require("sagemaker")
boto3 = pytest.importorskip("boto3")

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from json_service import JsonService  # noqa: E402
from test_target_sagemaker_deploy import aws, moto_endpoint  # noqa: E402,F401  (fixtures: a moto server on 127.0.0.1)
from test_target_sagemaker_shapes import validate_request  # noqa: E402
from test_target_sagemaker_support import example_text, plan_of, plan_of_text, write  # noqa: E402

from mlcompile.errors import SpecError  # noqa: E402
from mlcompile.runtime.materialize import materialize  # noqa: E402
from mlcompile.runtime.online import reader_for  # noqa: E402
from mlcompile.targets.sagemaker import SageMakerTarget  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/SageMakerFeatureStoreOffline"  # the profile's roles.feature_store


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("feature-store")
    return {example: write(*plan_of(example), out / example) for example in ("churn", "ranker-gpu", "batch-scoring")}


def load(folder: Path, path: str) -> Any:
    return json.loads((folder / path).read_text())


def kinds(folder: Path) -> dict[str, str]:
    return {f["path"]: f["kind"] for f in load(folder, "manifest.json")["files"]}


def online_config(folder: Path) -> dict[str, Any]:
    definition = load(folder, "pipelines/churn-prediction-training.definition.json")
    text = json.dumps(definition)
    start = text.index('"MLCOMPILE_ONLINE_FEATURES": ') + len('"MLCOMPILE_ONLINE_FEATURES": ')
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return json.loads(value)


def test_each_online_view_is_a_feature_group_that_botocore_accepts(builds: dict[str, Path]) -> None:
    groups = {p: k for p, k in kinds(builds["churn"]).items() if p.startswith("feature-store/")}
    assert groups == {
        "feature-store/customer_activity.json": "sagemaker.create_feature_group",
        "feature-store/customer_profile.json": "sagemaker.create_feature_group",
    }
    assert sorted(p for p in kinds(builds["ranker-gpu"]) if p.startswith("feature-store/")) == [
        "feature-store/item_popularity.json",
        "feature-store/user_engagement.json",
    ]
    assert not [p for p in kinds(builds["batch-scoring"]) if p.startswith("feature-store/")]  # no online view
    for name, folder in builds.items():
        for path in (p for p in kinds(folder) if p.startswith("feature-store/")):
            assert validate_request("sagemaker", "CreateFeatureGroup", load(folder, path), f"{name}/{path}") == []


def test_a_feature_group_holds_the_view_by_join_key_and_event_time_with_mapped_dtypes(builds: dict[str, Path]) -> None:
    body = load(builds["ranker-gpu"], "feature-store/item_popularity.json")
    assert body["FeatureGroupName"] == "search-ranker-item-popularity"
    assert (body["RecordIdentifierFeatureName"], body["EventTimeFeatureName"]) == ("item_id", "event_ts")
    assert body["FeatureDefinitions"] == [
        {"FeatureName": "item_id", "FeatureType": "String"},
        {"FeatureName": "event_ts", "FeatureType": "String"},
        {"FeatureName": "price_eur", "FeatureType": "Fractional"},
        {"FeatureName": "ctr_7d", "FeatureType": "Fractional"},
        {"FeatureName": "add_to_cart_rate_7d", "FeatureType": "Fractional"},
        {"FeatureName": "rating_avg", "FeatureType": "Fractional"},  # float32
        {"FeatureName": "category", "FeatureType": "String"},
    ]
    # records expire a ttl after their event time (2d)
    assert body["OnlineStoreConfig"] == {"EnableOnlineStore": True, "TtlDuration": {"Unit": "Days", "Value": 2}}
    assert body["OfflineStoreConfig"] == {"S3StorageConfig": {"S3Uri": "s3://acme-ml-artifacts-eu-west-1/mlcompile/search-ranker/feature-store"}}
    assert body["RoleArn"] == ROLE
    assert {"Key": "mlcompile-system", "Value": "search-ranker"} in body["Tags"]
    churn = load(builds["churn"], "feature-store/customer_activity.json")
    assert churn["OnlineStoreConfig"]["TtlDuration"] == {"Unit": "Days", "Value": 30}
    assert [d["FeatureType"] for d in churn["FeatureDefinitions"][2:]] == ["Integral", "Fractional", "Integral"]


def test_ttl_is_stated_in_the_largest_exact_unit() -> None:
    from mlcompile.targets.sagemaker.feature_store import ttl_duration

    assert [ttl_duration(s) for s in (14 * 86400, 36 * 3600, 90 * 60, 45)] == [
        {"Unit": "Weeks", "Value": 2},
        {"Unit": "Hours", "Value": 36},
        {"Unit": "Minutes", "Value": 90},
        {"Unit": "Seconds", "Value": 45},
    ]


def test_each_online_view_is_materialised_by_its_own_pipeline_on_its_refresh_cadence(builds: dict[str, Path]) -> None:
    folder = builds["ranker-gpu"]
    schedules = {p: load(folder, p) for p, k in kinds(folder).items() if k == "scheduler.create_schedule" and "materialize" in p}
    expressions = {body["Name"]: body["ScheduleExpression"] for body in schedules.values()}
    # item_popularity (ttl 2d) hourly, user_engagement (ttl 7d) daily, in UTC
    assert expressions == {"search-ranker-materialize-item-popularity": "cron(0 * * * ? *)", "search-ranker-materialize-user-engagement": "cron(0 0 * * ? *)"}
    assert {body["ScheduleExpressionTimezone"] for body in schedules.values()} == {"UTC"}
    target = schedules["schedules/search-ranker-materialize-item-popularity.json"]["Target"]
    assert target["Arn"] == "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/search-ranker-materialize-item-popularity"
    definition = load(folder, "pipelines/search-ranker-materialize-item-popularity.definition.json")
    (step,) = definition["Steps"]
    assert (step["Name"], step["Type"]) == ("materialize-item-popularity", "Processing")
    assert step["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "mlcompile.runtime", "materialize"]
    key = step["Arguments"]["AppSpecification"]["ContainerArguments"][1].rsplit("/", 1)[1]
    config = load(folder, f"configs/{key}")
    assert config["kind"] == "materialize"
    assert config["params"] == {
        "view": "item_popularity",
        "store": {
            "kind": "sagemaker",
            "region": "eu-west-1",
            "feature_group": "search-ranker-item-popularity",
            "record_identifier": "item_id",
            "event_time": "event_ts",
        },
    }
    assert [s["uri"] for s in config["features"]["sources"] if s["name"] == "item_stats"] == ["s3://acme-search-lake-eu/features/item_stats_daily.parquet"]


def test_the_registered_model_reads_its_online_features_by_entity_key(builds: dict[str, Path]) -> None:
    config = online_config(builds["churn"])
    assert config["kind"] == "sagemaker" and config["region"] == "eu-west-1"
    assert config["entity_keys"] == ["customer_id"]
    assert config["views"]["customer_profile"] == {
        "feature_group": "churn-prediction-customer-profile",
        "record_identifier": "customer_id",
        "dtypes": {"plan": "string", "tenure_days": "int64"},
    }
    assert len(config["features"]) == 5


# ------------------------------------------------------------------ refusals


def errors(tmp_path: Path, *replacements: tuple[str, str], example: str = "ranker-gpu") -> list[str]:
    plan, _ = plan_of_text(example_text(example, *replacements), tmp_path)
    return [d.render() for d in SageMakerTarget().check(plan) if d.severity == "error"]


def test_an_online_view_keyed_by_two_columns_is_refused_at_its_entities(tmp_path: Path) -> None:
    (error,) = errors(tmp_path, ("      entities: [user]\n", "      entities: [user, item]\n"))
    assert error == (
        f"{tmp_path / 'mlcompile.yaml'}:45:7: error: features.views[0].entities: online view 'user_engagement' is keyed by 2 columns "
        "(user_id, item_id): a SageMaker feature group has one record identifier (target sagemaker)\n"
        "  hint: key the view by one entity with one join key (e.g. a column that combines the keys in the source), or set online: false for this profile"
    )


def test_a_feature_named_like_an_offline_store_column_is_refused(tmp_path: Path) -> None:
    (error,) = errors(
        tmp_path, ("{name: category, dtype: string}", "{name: write_time, dtype: string}"), ("item_popularity:category", "item_popularity:write_time")
    )
    assert error.startswith(
        f"{tmp_path / 'mlcompile.yaml'}:55:7: error: features.views[1].features[4].name: feature 'write_time' is a column SageMaker Feature Store's offline store adds itself"
    )


def test_the_same_names_on_an_offline_view_are_no_concern(tmp_path: Path) -> None:
    assert (
        errors(
            tmp_path, ("{name: query_device, dtype: string}", "{name: write_time, dtype: string}"), ("query_context:query_device", "query_context:write_time")
        )
        == []
    )


def test_a_build_with_a_refused_view_stops_with_the_located_error(tmp_path: Path) -> None:
    from build_support import ROOT, build

    spec = tmp_path / "mlcompile.yaml"
    spec.write_text(example_text("ranker-gpu", ("      entities: [user]\n", "      entities: [user, item]\n")))
    with pytest.raises(SpecError, match="a SageMaker feature group has one record identifier"):
        build(spec, ROOT / "targets" / "aws-prod.yaml")


# ------------------------------------------------------------------ runtime: writer and reader


class FeatureStoreRuntimeStandIn(JsonService):
    """PutRecord, GetRecord and BatchGetRecord of sagemaker-featurestore-runtime (REST JSON)
    over records held in memory. Each request is validated against botocore's model of the
    operation; the online store keeps the newest record per identifier (by event time)."""

    def __init__(self, groups: dict[str, tuple[str, str]]):
        self.groups = groups  # name → (record identifier, event time feature)
        self.records: dict[str, dict[str, dict[str, str]]] = {name: {} for name in groups}
        self.problems: list[str] = []
        self.operations: list[str] = []
        super().__init__()

    def respond(self, method: str, url: Any, raw: bytes, content_type: str) -> tuple[int, Any]:
        body = json.loads(raw) if raw else {}
        if method == "PUT" and url.path.startswith("/FeatureGroup/"):
            name = unquote(url.path.removeprefix("/FeatureGroup/"))
            self._check("PutRecord", {"FeatureGroupName": name, **body})
            if name not in self.groups:
                return 404, {"message": f"feature group {name} not found"}
            record = {f["FeatureName"]: f["ValueAsString"] for f in body["Record"]}
            key, event_time = self.groups[name]
            current = self.records[name].get(record[key])
            if current is None or current[event_time] <= record[event_time]:
                self.records[name][record[key]] = record
            return 200, {}
        if method == "POST" and url.path == "/BatchGetRecord":
            self._check("BatchGetRecord", body)
            found = []
            for identifier in body["Identifiers"]:
                names = identifier.get("FeatureNames")
                for value in identifier["RecordIdentifiersValueAsString"]:
                    record = self.records.get(identifier["FeatureGroupName"], {}).get(value)
                    if record is not None:
                        chosen = [{"FeatureName": k, "ValueAsString": v} for k, v in record.items() if names is None or k in names]
                        found.append({"FeatureGroupName": identifier["FeatureGroupName"], "RecordIdentifierValueAsString": value, "Record": chosen})
            return 200, {"Records": found, "Errors": [], "UnprocessedIdentifiers": []}
        if method == "GET" and url.path.startswith("/FeatureGroup/"):
            name = unquote(url.path.removeprefix("/FeatureGroup/"))
            value = parse_qs(url.query)["RecordIdentifierValueAsString"][0]
            record = self.records.get(name, {}).get(value)
            return 200, ({"Record": [{"FeatureName": k, "ValueAsString": v} for k, v in record.items()]} if record else {})
        return 404, {"message": f"no {method} {url.path}"}

    def _check(self, operation: str, request: dict[str, Any]) -> None:
        self.operations.append(operation)
        self.problems += validate_request("sagemaker-featurestore-runtime", operation, request, operation)


@pytest.fixture
def aws_stand_in(monkeypatch: pytest.MonkeyPatch) -> Any:
    def start(groups: dict[str, tuple[str, str]]) -> FeatureStoreRuntimeStandIn:
        service = FeatureStoreRuntimeStandIn(groups)
        monkeypatch.setenv("AWS_ENDPOINT_URL", service.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        return service

    return start


def materialize_config(folder: Path, view: str, source_uri: str) -> dict[str, Any]:
    """The config the build's materialize step runs with, its source replaced by a local file."""
    for path, kind in kinds(folder).items():
        if kind == "mlcompile.step_config":
            config = load(folder, path)
            if config["kind"] == "materialize" and config["params"]["view"] == view:
                for source in config["features"]["sources"]:
                    source.update(uri=source_uri, format="csv")
                return config
    raise AssertionError(f"no materialize config for {view}")


def test_materialize_writes_the_newest_row_per_customer_within_the_ttl_and_serving_reads_it_back(
    builds: dict[str, Path], aws_stand_in: Any, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    day = timedelta(days=1)
    rows = [
        ("customer_id", "event_ts", "orders_30d", "spend_30d", "support_tickets_30d", "plan", "tenure_days"),
        ("C1", now - 3 * day, 2, 20.0, 1, "basic", 100),
        ("C1", now - day, 3, 41.5, 0, "pro", 102),  # newest of C1: the one written
        ("C2", now - 45 * day, 9, 90.0, 2, "plus", 700),  # beyond customer_activity's 30d ttl
        ("C3", now - 2 * day, 1, "", 4, "basic", 5),  # spend unknown: left out of the record
    ]
    source = tmp_path / "activity.csv"
    source.write_text("\n".join(",".join(v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else str(v) for v in row) for row in rows) + "\n")
    folder = builds["churn"]
    service = aws_stand_in(
        {"churn-prediction-customer-activity": ("customer_id", "event_ts"), "churn-prediction-customer-profile": ("customer_id", "event_ts")}
    )
    with service:
        activity = materialize(materialize_config(folder, "customer_activity", str(source)), {}, {})
        # the profile view through the command line the processing job runs
        config_file = tmp_path / "profile.json"
        config_file.write_text(json.dumps(materialize_config(folder, "customer_profile", str(source))))
        result_file = tmp_path / "result.json"
        env = {**os.environ, "MLCOMPILE_STEP_RESULT": str(result_file)}
        done = subprocess.run(
            [sys.executable, "-m", "mlcompile.runtime", "materialize", "--config", f"@{config_file}"], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        results = [activity, json.loads(result_file.read_text())["result"]]
        config = online_config(folder)
        got = reader_for(config).read([{"customer_id": "C1"}, {"customer_id": "C2"}, {"customer_id": "C3"}], config["features"])
    assert [r["records"] for r in results] == [2, 3]  # C2 is stale for activity (30d) but not for profile (90d)
    assert service.problems == []
    assert service.records["churn-prediction-customer-activity"]["C1"] == {
        "customer_id": "C1",
        "event_ts": (now - day).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "orders_30d": "3",
        "spend_30d": "41.5",
        "support_tickets_30d": "0",
    }
    assert "spend_30d" not in service.records["churn-prediction-customer-activity"]["C3"]
    assert got == [
        {
            "customer_activity:orders_30d": 3,
            "customer_activity:spend_30d": 41.5,
            "customer_activity:support_tickets_30d": 0,
            "customer_profile:plan": "pro",
            "customer_profile:tenure_days": 102,
        },
        {
            "customer_activity:orders_30d": None,
            "customer_activity:spend_30d": None,
            "customer_activity:support_tickets_30d": None,
            "customer_profile:plan": "plus",
            "customer_profile:tenure_days": 700,
        },
        {
            "customer_activity:orders_30d": 1,
            "customer_activity:spend_30d": None,
            "customer_activity:support_tickets_30d": 4,
            "customer_profile:plan": "basic",
            "customer_profile:tenure_days": 5,
        },
    ]
    assert service.operations.count("BatchGetRecord") == 2  # one call per feature group, not per entity


def test_values_are_written_as_feature_store_strings_and_read_back_typed() -> None:
    from mlcompile.runtime.materialize import as_string
    from mlcompile.runtime.online.sagemaker import parse

    cases = [("int64", 7.0, "7", 7), ("bool", True, "1", True), ("bool", "false", "0", False), ("float32", 0.25, "0.25", 0.25), ("string", "pro", "pro", "pro")]
    for dtype, value, stored, read in cases:
        assert as_string(value, dtype) == stored
        assert parse(stored, dtype) == read
    assert as_string("2026-01-31 06:00:00+01:00", "timestamp") == "2026-01-31T05:00:00Z"


# ------------------------------------------------------------------ deploy (moto server)


def test_deploy_creates_the_feature_groups_once_and_refuses_to_retype_a_feature(aws: dict[str, str], tmp_path: Path) -> None:
    from test_target_sagemaker_deploy import ROOT, client, deploy

    first = deploy("churn")
    assert "create feature group churn-prediction-customer-activity: online ttl 30 days" in first
    assert "create feature group churn-prediction-customer-profile: online ttl 90 days" in first
    assert "create pipeline churn-prediction-materialize-customer-activity" in first
    assert "create schedule churn-prediction-materialize-customer-activity: cron(0 0 * * ? *)" in first
    described = client("sagemaker").describe_feature_group(FeatureGroupName="churn-prediction-customer-profile")  # type: ignore[attr-defined]
    assert [d["FeatureName"] for d in described["FeatureDefinitions"]] == ["customer_id", "event_ts", "plan", "tenure_days"]

    second = deploy("churn")
    assert "unchanged feature group churn-prediction-customer-activity" in second
    assert [line for line in second if not line.startswith("unchanged ")] == []

    spec = tmp_path / "mlcompile.yaml"
    spec.write_text(
        example_text("churn", ('{name: orders_30d, dtype: int64, description: "orders placed, trailing 30 days"}', "{name: orders_30d, dtype: float64}"))
    )
    done = mlcompile(["deploy", str(spec), "--target", str(ROOT / "targets/aws-prod.yaml"), "--yes", "--git-commit", "none"])
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "feature group churn-prediction-customer-activity exists with different features orders_30d (removed or retyped): SageMaker cannot change that "
        "in place; delete the group (its online records are lost) and deploy again"
    ) in done.stderr


def test_more_online_features_than_a_container_environment_value_holds_are_refused() -> None:
    import dataclasses

    from mlcompile.plan.nodes import FeatureColumn

    plan, _ = plan_of("churn")
    columns = tuple(FeatureColumn(f"trailing_activity_measure_number_{i:02d}", "float64") for i in range(20))
    views = tuple(dataclasses.replace(v, features=columns) if v.name == "customer_activity" else v for v in plan.features.views)
    steps = tuple(
        dataclasses.replace(s, params={**s.params, "features": [f"customer_activity:{c.name}" for c in columns]}) if s.kind == "extract_features" else s
        for s in plan.training.steps
    )
    plan = dataclasses.replace(plan, features=dataclasses.replace(plan.features, views=views), training=dataclasses.replace(plan.training, steps=steps))
    (error,) = [d for d in SageMakerTarget().check(plan) if d.severity == "error"]
    assert error.path == "deployment.online"
    assert "MLCOMPILE_ONLINE_FEATURES (the online features it reads) exceeds the 1024 characters of a SageMaker container environment value" in error.message


def test_an_online_view_over_a_bigquery_table_is_refused_at_the_sources_uri(tmp_path: Path) -> None:
    (error,) = errors(
        tmp_path,
        (
            "{name: customer_activity_daily, uri: s3://acme-growth-lake-eu/crm/customer_activity_daily.parquet, format: parquet}",
            "{name: customer_activity_daily, uri: bq://acme-growth-prod.crm.customer_activity_daily, format: table}",
        ),
        example="churn",
    )
    first, hint = error.split("\n")
    assert first.startswith(f"{tmp_path / 'mlcompile.yaml'}:")  # where the override sets the uri
    assert first.split(": ", 1)[1] == (
        "error: features.sources[0].uri: online view 'customer_activity', 'customer_profile' reads source 'customer_activity_daily' from BigQuery "
        "(bq://acme-growth-prod.crm.customer_activity_daily): the materialisation job reads files (parquet, csv), not BigQuery tables (target sagemaker)"
    )
    assert hint == "  hint: override the source's uri for profile 'aws-prod' with an s3:// export of the table"
