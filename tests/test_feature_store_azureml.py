"""`features:` on Azure ML: the managed feature store's files load back through azure-ai-ml's
own loaders and carry the spec's values; the dtype table; what the feature store refuses,
located at the spec; the online deployment's feature contract; and the serving-time reader
(key layout, value decoding, the Redis protocol against a local stand-in)."""

from __future__ import annotations

import base64
import json
import logging
import socketserver
import struct
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from requires import require

require("azure.ai.ml")

from mlcompile.plan.nodes import Plan  # noqa: E402
from mlcompile.runtime.online import ENV, config_from_env, reader_for  # noqa: E402
from mlcompile.runtime.online.azureml import RedisClient, decode, lookup_key, make_reader  # noqa: E402
from mlcompile.targets.azureml import AzureMLTarget  # noqa: E402
from mlcompile.targets.azureml.check import check  # noqa: E402
from mlcompile.targets.azureml.feature_store import recurrence  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_target_azureml import EXAMPLES, PROFILE, _compile, builds  # noqa: E402,F401  (the shared module-scoped builds)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore:.*marshmallow.*")

ROOT = Path(__file__).resolve().parents[1]
# The documented table (docs/targets/azureml.md, "Feature store"): spec dtype → column type
DTYPE_TABLE = {"int32": "integer", "int64": "long", "float32": "float", "float64": "double", "string": "string", "bool": "boolean", "timestamp": "datetime"}
FEATURE_KINDS = {"azureml.feature_store", "azureml.feature_store_entity", "azureml.feature_set", "azureml.featureset_spec"}


def _quietly(call):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return call()
        finally:
            logging.disable(logging.NOTSET)


def _load(kind: str, path: Path):  # type: ignore[no-untyped-def]
    from azure.ai.ml import load_feature_set, load_feature_store, load_feature_store_entity, load_online_deployment

    loaders = {
        "azureml.feature_store": load_feature_store,
        "azureml.feature_store_entity": load_feature_store_entity,
        "azureml.feature_set": load_feature_set,
        "azureml.online_deployment": load_online_deployment,
    }
    return _quietly(lambda: loaders[kind](str(path)))


def _spec_of(feature_set):  # type: ignore[no-untyped-def]
    """The feature set's specification folder, read and validated the way
    `MLClient.feature_sets.begin_create_or_update` does before it sends anything."""
    from azure.ai.ml.operations._feature_set_operations import FeatureSetOperations

    return _quietly(lambda: FeatureSetOperations._validate_and_get_feature_set_spec(None, feature_set))


def _manifest(folder: Path) -> dict[str, str]:
    return {f["path"]: f["kind"] for f in json.loads((folder / "manifest.json").read_text())["files"]}


# ------------------------------------------------------------------ the files


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_feature_store_file_loads_through_the_sdk(example: str, builds) -> None:
    plan, folder = builds[example]
    files = {path: kind for path, kind in _manifest(folder).items() if kind in FEATURE_KINDS}
    views = [v.name for v in plan.features.views]
    assert files == {
        "feature-store/feature-store.yaml": "azureml.feature_store",
        **{f"feature-store/entities/{e}.yaml": "azureml.feature_store_entity" for v in plan.features.views for e in v.entities},
        **{f"feature-store/feature-sets/{v}/feature-set.yaml": "azureml.feature_set" for v in views},
        **{f"feature-store/feature-sets/{v}/spec/FeatureSetSpec.yaml": "azureml.featureset_spec" for v in views},
    }
    for path, kind in files.items():
        if kind == "azureml.featureset_spec":
            continue  # read through its feature set, below
        entity = _load(kind, folder / path)
        if kind == "azureml.feature_set":
            assert _spec_of(entity).features


@pytest.mark.parametrize("example", EXAMPLES)
def test_feature_store_names_the_profiles_stores(example: str, builds) -> None:
    plan, folder = builds[example]
    settings = plan.platform_settings["feature_store"]
    store = _load("azureml.feature_store", folder / "feature-store/feature-store.yaml")
    assert store.name == settings["name"] == "fs-acme-prod-weu"
    assert store.resource_group == plan.platform_settings["resource_group"]  # defaulted from the profile
    assert (store.online_store.type, store.online_store.target) == ("redis", settings["online_store"])
    assert (store.offline_store.type, store.offline_store.target) == ("azure_data_lake_gen2", settings["offline_store"])
    assert store.tags["mlcompile-spec-sha256"] == plan.spec_sha256


@pytest.mark.parametrize("example", EXAMPLES)
def test_entities_are_keyed_by_their_join_keys(example: str, builds) -> None:
    plan, folder = builds[example]
    used = {e for v in plan.features.views for e in v.entities}
    for entity in plan.features.entities:
        if entity.name not in used:
            continue
        loaded = _load("azureml.feature_store_entity", folder / f"feature-store/entities/{entity.name}.yaml")
        assert (loaded.name, loaded.version) == (entity.name, "1")
        # the spec gives join keys no dtype: keys are strings unless a feature of that name says otherwise
        assert [(c.name, str(c.type)) for c in loaded.index_columns] == [(k, "string") for k in entity.join_keys]


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_view_is_a_feature_set_with_the_spec_values(example: str, builds) -> None:
    plan, folder = builds[example]
    sources = {s.name: s for s in plan.features.sources}
    for view in plan.features.views:
        feature_set = _load("azureml.feature_set", folder / f"feature-store/feature-sets/{view.name}/feature-set.yaml")
        assert (feature_set.name, feature_set.version) == (view.name, "1")
        assert feature_set.entities == [f"azureml:{e}:1" for e in view.entities]
        spec = _spec_of(feature_set)
        source = sources[view.source]
        assert (spec.source.type, spec.source.path, spec.source.timestamp_column.name) == ("parquet", source.uri, source.timestamp_field)
        assert [(f.name, f.data_type) for f in spec.features] == [(c.name, DTYPE_TABLE[c.dtype]) for c in view.features]
        assert [c.name for c in spec.index_columns] == list(view.join_keys)
        for lookback in (spec.source_lookback, spec.temporal_join_lookback):  # both are the ttl
            assert lookback.days * 86400 + lookback.hours * 3600 + lookback.minutes * 60 == view.ttl_seconds


@pytest.mark.parametrize("example", EXAMPLES)
def test_online_views_are_materialised_on_the_plans_refresh_cadence(example: str, builds) -> None:
    plan, folder = builds[example]
    for view in plan.features.views:
        settings = _load("azureml.feature_set", folder / f"feature-store/feature-sets/{view.name}/feature-set.yaml").materialization_settings
        if not view.online:
            assert settings is None  # defined for offline reads from the source, never materialised
            continue
        assert settings.online_enabled and settings.offline_enabled
        assert settings.resource.instance_type == "standard_e8s_v3"
        frequency, interval, hours, minutes = recurrence(view.refresh_cron)
        schedule = settings.schedule
        assert (schedule.frequency, schedule.interval, schedule.time_zone) == (frequency, interval, "UTC")
        if frequency != "minute":
            assert (list(schedule.schedule.hours), list(schedule.schedule.minutes)) == (hours, minutes)


def test_refresh_crons_become_recurrences() -> None:
    assert recurrence("*/15 * * * *") == ("minute", 15, [], [])
    assert recurrence("0 * * * *") == ("hour", 1, [], [0])
    assert recurrence("0 0 * * *") == ("day", 1, [0], [0])
    assert recurrence("0 0 * * 1") is None  # weekly: not a cadence the plan derives; check() refuses it


def test_the_dtype_table_covers_every_spec_dtype() -> None:
    from typing import get_args

    from mlcompile.spec.models import DType
    from mlcompile.targets.azureml.feature_store import DTYPES

    assert DTYPES == DTYPE_TABLE and set(get_args(DType)) == set(DTYPES)


# ------------------------------------------------------------------ serving


@pytest.mark.parametrize("example", EXAMPLES)
def test_online_deployments_carry_the_feature_contract(example: str, builds) -> None:
    plan, folder = builds[example]
    if plan.online is None:
        return
    model_features = next(s for s in plan.training.steps if s.kind == "extract_features").params["features"]
    online_views = {v.name for v in plan.features.views if v.online}
    for path, kind in _manifest(folder).items():
        if kind != "azureml.online_deployment":
            continue
        config = json.loads(_load(kind, folder / path).environment_variables[ENV])
        assert config["kind"] == "azureml"
        assert config["feature_store"] == {
            "name": "fs-acme-prod-weu",
            "resource_group": "rg-ml-prod-weu",
            "subscription_id": plan.platform_settings["subscription_id"],
        }
        assert config["features"] == [f for f in model_features if f.split(":")[0] in online_views]
        assert config["request_features"] == [f for f in model_features if f.split(":")[0] not in online_views]
        assert config["model_features"] == model_features  # the model's input order over both
        assert [s["name"] for s in config["feature_sets"]] == list(dict.fromkeys(f.split(":")[0] for f in config["features"]))
        views = {v.name: v for v in plan.features.views}
        assert config["entity_keys"] == list(dict.fromkeys(k for s in config["feature_sets"] for k in views[s["name"]].join_keys))


def test_ranker_requests_carry_the_query_features_that_are_not_online(builds) -> None:
    plan, folder = builds["ranker-gpu"]
    config = json.loads(_load("azureml.online_deployment", folder / f"endpoints/{plan.online.name}-blue.yml").environment_variables[ENV])
    assert config["request_features"] == ["query_context:query_tokens", "query_context:query_category", "query_context:query_device"]
    assert config["entity_keys"] == ["user_id", "item_id"]


# ------------------------------------------------------------------ without a feature_store block


def _without_store(plan: Plan) -> Plan:
    return replace(plan, platform_settings={**plan.platform_settings, "feature_store": None})


def test_without_a_feature_store_block_views_are_defined_in_the_default_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = _without_store(_compile("churn", monkeypatch, render=False).results[0].plan)
    files = {f.path: f for f in _quietly(lambda: AzureMLTarget().render(plan))}
    for file in files.values():
        (tmp_path / file.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file.path).write_bytes(file.content)
    store = _load("azureml.feature_store", tmp_path / "feature-store/feature-store.yaml")
    assert (store.name, store.resource_group, store.online_store, store.offline_store) == ("mlw-acme-prod-weu-fs", "rg-ml-prod-weu", None, None)
    feature_set = _load("azureml.feature_set", tmp_path / "feature-store/feature-sets/customer_activity/feature-set.yaml")
    assert feature_set.materialization_settings is None
    deployment = _load("azureml.online_deployment", tmp_path / f"endpoints/{plan.online.name}-blue.yml")
    assert ENV not in deployment.environment_variables  # nothing to read: the request carries the features
    warned = {d.path: d for d in check(plan) if d.severity == "warning"}
    assert "online store" in warned["features.views[0].online"].message
    assert warned["features.views[0].online"].line == 41


# ------------------------------------------------------------------ refusals


def _errors(plan: Plan) -> list:
    """The errors about `features:` (a changed feature can also upset e.g. drift monitoring)."""
    return [d for d in check(plan) if d.severity == "error" and d.path.startswith("features.")]


def test_an_unsupported_dtype_is_a_located_error(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _compile("churn", monkeypatch, render=False).results[0].plan
    view = plan.features.views[0]
    bad = replace(view, features=(view.features[0], replace(view.features[1], dtype="decimal"), *view.features[2:]))
    (error,) = _errors(replace(plan, features=replace(plan.features, views=(bad, *plan.features.views[1:]))))
    assert (error.file, error.line, error.col, error.path) == ("examples/churn/mlcompile.yaml", 41, 7, "features.views[0].features[1].dtype")
    assert error.message == (
        "feature 'customer_activity:spend_30d' has dtype 'decimal', which the Azure ML feature store has no column type for (target azureml)"
    )
    assert error.hint == "use one of bool, float32, float64, int32, int64, string, timestamp"


def test_a_source_a_feature_set_cannot_read_is_a_located_error(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _compile("churn", monkeypatch, render=False).results[0].plan
    source = replace(plan.features.sources[0], uri="azureml://datastores/lake/paths/crm/activity.parquet")
    (error,) = _errors(replace(plan, features=replace(plan.features, sources=(source, *plan.features.sources[1:]))))
    assert (error.file, error.line, error.col, error.path) == ("examples/churn/mlcompile.yaml", 167, 48, "features.sources[0].uri")
    assert error.message == (
        "source 'customer_activity_daily' of views customer_activity, customer_profile is 'azureml://datastores/lake/paths/crm/activity.parquet'; "
        "an Azure ML feature set reads abfss://, wasbs:// or https://<account>.blob|dfs.core.windows.net/ paths only (target azureml)"
    )
    assert error.hint == "give this profile the source's storage path under overrides.<profile>.features.sources"


@pytest.mark.parametrize("uri", ["bq://acme.crm.activity", "s3://lake/activity.parquet", "gs://lake/activity.parquet"])
def test_a_source_outside_azure_is_a_located_error_with_an_override_hint(monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    plan = _compile("churn", monkeypatch, render=False).results[0].plan
    source = replace(plan.features.sources[0], uri=uri)
    errors = {d.path: d for d in _errors(replace(plan, features=replace(plan.features, sources=(source, *plan.features.sources[1:]))))}
    error = errors["features.sources[0].uri"]
    assert (error.line, error.col) == (167, 48) and uri in error.message
    assert "overrides.<profile>.features.sources" in error.hint


def test_a_refresh_cadence_no_recurrence_expresses_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _compile("churn", monkeypatch, render=False).results[0].plan
    view = replace(plan.features.views[0], refresh_cron="0 0 * * 1")
    (error,) = _errors(replace(plan, features=replace(plan.features, views=(view, *plan.features.views[1:]))))
    assert error.path == "features.views[0].ttl" and "'0 0 * * 1'" in error.message


# ------------------------------------------------------------------ the online reader

CONFIG = {
    "kind": "azureml",
    "feature_sets": [
        {"name": "Customer_Activity", "version": "1", "index_columns": [{"name": "customer_id", "type": "string"}],
         "features": [{"name": "orders_30d", "type": "long"}, {"name": "spend_30d", "type": "double"}, {"name": "vip", "type": "boolean"}]},
        {"name": "pair", "version": "2", "materialization_version": "7", "index_columns": [{"name": "user_id", "type": "string"}, {"name": "item_id", "type": "long"}],
         "features": [{"name": "ctr", "type": "float"}, {"name": "category", "type": "string"}]},
    ],
    "entity_keys": ["customer_id", "user_id", "item_id"],
    "features": ["Customer_Activity:orders_30d", "Customer_Activity:spend_30d", "Customer_Activity:vip", "pair:ctr", "pair:category"],
}  # fmt: skip
STORE_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def packed_double(value: float) -> bytes:
    """How materialisation stores a float/double: base64 of the msgpack float64."""
    return base64.b64encode(b"\xcb" + struct.pack(">d", value))


def test_lookup_keys_follow_the_managed_stores_layout() -> None:
    first, second = CONFIG["feature_sets"]
    assert lookup_key(STORE_ID, first, {"customer_id": "C-42"}) == f"featurestore:{STORE_ID}:featureset:customer_activity:version:1:customer_id:C-42"
    # several index columns in entity order; the materialisation version joins the prefix
    assert lookup_key(STORE_ID, second, {"item_id": 9, "user_id": "u1"}) == f"featurestore:{STORE_ID}:featureset:pair:version:2:7:user_id:u1:item_id:9"
    with pytest.raises(KeyError, match="missing key 'item_id'"):
        lookup_key(STORE_ID, second, {"user_id": "u1"})


def test_values_decode_to_the_feature_type() -> None:
    assert decode(b"12", "long") == 12 and decode(b"True", "boolean") is True and decode(b"False", "boolean") is False
    assert decode(packed_double(0.25), "double") == 0.25
    assert decode(base64.b64encode(b"\xca" + struct.pack(">f", 1.5)), "float") == 1.5
    assert decode(base64.b64encode(b"\x03"), "double") == 3.0  # msgpack packs whole numbers as ints
    assert decode(b"plus", "string") == "plus" and decode(None, "long") is None


class FakeRedis:
    def __init__(self, hashes: dict[str, dict[str, bytes]]):
        self.hashes = hashes
        self.calls: list[list[tuple[str, list[str]]]] = []

    def hmget_many(self, requests):  # type: ignore[no-untyped-def]
        self.calls.append([(k, list(f)) for k, f in requests])
        return [[self.hashes.get(key, {}).get(field) for field in fields] for key, fields in requests]


def test_the_reader_returns_one_row_per_entity_keyed_by_view_feature() -> None:
    prefix = f"featurestore:{STORE_ID}:featureset:"
    fake = FakeRedis({
        f"{prefix}customer_activity:version:1:customer_id:C-1": {"orders_30d": b"3", "spend_30d": packed_double(41.5), "vip": b"True"},
        f"{prefix}pair:version:2:7:user_id:u1:item_id:9": {"ctr": packed_double(0.125), "category": b"shoes"},
    })  # fmt: skip
    reader = make_reader(CONFIG, client=fake, environ={"MLCOMPILE_AZUREML_FEATURE_STORE_ID": STORE_ID})
    rows = reader.read([{"customer_id": "C-1", "user_id": "u1", "item_id": 9}, {"customer_id": "C-2", "user_id": "u1", "item_id": 9}], CONFIG["features"])
    assert rows[0] == {
        "Customer_Activity:orders_30d": 3,
        "Customer_Activity:spend_30d": 41.5,
        "Customer_Activity:vip": True,
        "pair:ctr": 0.125,
        "pair:category": "shoes",
    }
    assert rows[1]["Customer_Activity:orders_30d"] is None and rows[1]["pair:category"] == "shoes"  # an unknown customer: None, not an error
    assert len(fake.calls) == 1 and len(fake.calls[0]) == 4  # one round trip: one HMGET per entity and feature set
    with pytest.raises(KeyError, match="not materialised online"):
        reader.read([{"customer_id": "C-1"}], ["query_context:query_tokens"])


def test_the_reader_needs_the_store_id_and_redis_url() -> None:
    with pytest.raises(ValueError, match="MLCOMPILE_AZUREML_FEATURE_STORE_ID"):
        make_reader(CONFIG, environ={})
    with pytest.raises(ValueError, match="MLCOMPILE_AZUREML_REDIS_URL"):
        make_reader(CONFIG, environ={"MLCOMPILE_AZUREML_FEATURE_STORE_ID": STORE_ID})


class _RespHandler(socketserver.StreamRequestHandler):
    """A Redis stand-in that speaks enough RESP for the reader: AUTH, SELECT, HMGET."""

    def _command(self) -> list[str] | None:
        line = self.rfile.readline()
        if not line:
            return None
        words = []
        for _ in range(int(line[1:])):
            length = int(self.rfile.readline()[1:])
            words.append(self.rfile.read(length + 2)[:-2].decode())
        return words

    def handle(self) -> None:
        server = self.server
        while (command := self._command()) is not None:
            server.seen.append(command[0])  # type: ignore[attr-defined]
            if command[0] == "AUTH":
                self.wfile.write(b"+OK\r\n" if command[-1] == "s3cret" else b"-WRONGPASS invalid password\r\n")
            elif command[0] == "SELECT":
                self.wfile.write(b"+OK\r\n")
            elif command[0] == "HMGET":
                values = server.hashes.get(command[1], {})  # type: ignore[attr-defined]
                out = [b"*%d\r\n" % (len(command) - 2)]
                for field in command[2:]:
                    value = values.get(field)
                    out.append(b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value))
                self.wfile.write(b"".join(out))
            else:
                self.wfile.write(b"-ERR unknown command\r\n")


@pytest.fixture
def redis_stand_in() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RespHandler)
    server.daemon_threads = True
    server.hashes = {f"featurestore:{STORE_ID}:featureset:customer_activity:version:1:customer_id:C-1": {"orders_30d": b"5", "spend_30d": packed_double(9.75)}}  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_reader_speaks_redis_through_the_env_contract(redis_stand_in, monkeypatch: pytest.MonkeyPatch) -> None:
    port = redis_stand_in.server_address[1]
    monkeypatch.setenv(ENV, json.dumps(CONFIG))
    monkeypatch.setenv("MLCOMPILE_AZUREML_REDIS_URL", f"redis://:s3cret@127.0.0.1:{port}/1")
    monkeypatch.setenv("MLCOMPILE_AZUREML_FEATURE_STORE_ID", STORE_ID)
    reader = reader_for(config_from_env())  # the serving runtime's path: kind → runtime/online/azureml.py
    rows = reader.read([{"customer_id": "C-1"}, {"customer_id": "C-404"}], ["Customer_Activity:orders_30d", "Customer_Activity:spend_30d"])
    assert rows == [
        {"Customer_Activity:orders_30d": 5, "Customer_Activity:spend_30d": 9.75},
        {"Customer_Activity:orders_30d": None, "Customer_Activity:spend_30d": None},
    ]
    assert redis_stand_in.seen == ["AUTH", "SELECT", "HMGET", "HMGET"]
    with pytest.raises(RuntimeError, match="WRONGPASS"):
        RedisClient(f"redis://:wrong@127.0.0.1:{port}").hmget_many([("k", ["f"])])


def test_the_redis_url_may_be_a_secret_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    # the URL holds the cache's access key: the deployment may name a secret instead
    monkeypatch.setenv("MLCOMPILE_SECRET_FS_REDIS_URL", "rediss://:k3y@fs-cache.redis.cache.windows.net:6380/0")
    reader = make_reader({"feature_sets": [], "features": [], "entity_keys": []},
                         environ={"MLCOMPILE_AZUREML_REDIS_URL": "secret://fs-redis-url", "MLCOMPILE_AZUREML_FEATURE_STORE_ID": "fs-id"})  # fmt: skip
    client = reader.client
    assert (client.host, client.port, client.tls, client.password) == ("fs-cache.redis.cache.windows.net", 6380, True, "k3y")
