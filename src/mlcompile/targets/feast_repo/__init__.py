"""A Feast feature repository rendered from the plan's feature store: shared support for the
targets whose feature store is Feast (`local`, `kubeflow`). Not a target itself.

A build gets two files under `feature_repo/`:

* `feature_store.yaml` (kind `feast.feature_store_config`): project, registry, offline and
  online store, as the profile names them (`local`: Feast's file offline store over the
  sources staged as parquet under `data/`, SQLite online store, file registry, all inside
  the repo folder; `kubeflow`: the profile's `kubeflow.feature_store` block). Credentials
  are `secret://NAME` references in the profile and `${MLCOMPILE_SECRET_NAME}` here: Feast
  expands environment variables when it loads the file, and the pods that load it carry
  the secret under that name.
* `<system>_features.py` (kind `feast.repo`): one `Entity` per entity, one data source per
  source used by a view (the class follows the source's URI and the offline store),
  one `FeatureView` per view (ttl, `online`, typed schema) and a `FeatureService` named
  after the system holding the training dataset's features.

Both are rendered with the jinja2 templates beside this module. Feast itself is never
imported here: building needs no Feast; the files are checked with Feast in the tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from mlcompile import yaml_emit
from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import DataSource, Plan
from mlcompile.targets.base import OutputFile, unsupported

REPO_DIR = "feature_repo"
KIND_CONFIG = "feast.feature_store_config"
KIND_REPO = "feast.repo"
# what `secret://NAME` becomes in feature_store.yaml (Feast expands ${VAR} when loading it)
SECRET_ENV_PREFIX = "MLCOMPILE_SECRET_"
# where the local run stages each source as parquet, relative to the repo folder
LOCAL_DATA_DIR = "data"

# spec dtype → Feast type (feast.types); the docs' dtype table is this mapping
FEAST_TYPES = {
    "int32": "Int32",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
    "string": "String",
    "bool": "Bool",
    "timestamp": "UnixTimestamp",
}

# profile store kind → Feast's `type:` in feature_store.yaml
OFFLINE_TYPES = {"file": "file", "bigquery": "bigquery", "redshift": "redshift", "snowflake": "snowflake.offline", "spark": "spark"}
ONLINE_TYPES = {
    "sqlite": "sqlite",
    "redis": "redis",
    "dynamodb": "dynamodb",
    "bigtable": "bigtable",
    "datastore": "datastore",
    "postgres": "postgres",
    "snowflake": "snowflake.online",
}

# Dtypes an offline store cannot hold as declared: a BigQuery table has only 64-bit
# integers and floats (Feast reads INT64/FLOAT64 columns as Int64/Float64), so a feature
# declared int32/float32 would not match the values it reads.
UNSUPPORTED_DTYPES: dict[str, dict[str, str]] = {
    "bigquery": {
        "int32": "BigQuery has no 32-bit integer column (INT64 only)",
        "float32": "BigQuery has no 32-bit float column (FLOAT64 only)",
    },
}

# object stores whose parquet (or, with Spark, csv) files Feast's file and Spark stores read
FILE_SCHEMES = ("gs", "s3", "abfss")


@dataclass(frozen=True)
class StoreSettings:
    """Where a platform's Feast repo keeps its registry and its offline and online data."""

    provider: str
    registry: str
    offline: dict[str, Any]  # {"kind": ..., **options}
    online: dict[str, Any]
    local: bool  # sources are staged as parquet under LOCAL_DATA_DIR by the local run


def project_name(plan: Plan) -> str:
    """Feast project names are letters, digits and underscores."""
    return plan.system.replace("-", "_")


def module_name(plan: Plan) -> str:
    return f"{project_name(plan)}_features"


def store_settings(plan: Plan) -> StoreSettings:
    if plan.platform == "local":
        return StoreSettings(
            provider="local",
            registry=f"{LOCAL_DATA_DIR}/registry.db",
            offline={"kind": "file"},
            online={"kind": "sqlite", "path": f"{LOCAL_DATA_DIR}/online_store.db"},
            local=True,
        )
    block = dict(plan.platform_settings.get("feature_store") or {})
    offline = _flat(block.get("offline")) or {"kind": "file"}
    online = _flat(block.get("online")) or dict(DEFAULT_ONLINE)
    registry = block.get("registry") or default_registry(plan)
    provider = "gcp" if offline["kind"] == "bigquery" or online["kind"] in ("bigtable", "datastore") else (
        "aws" if offline["kind"] == "redshift" or online["kind"] == "dynamodb" else "local"
    )  # fmt: skip
    return StoreSettings(provider=provider, registry=registry, offline=offline, online=online, local=False)


# Without a `feature_store` block a cluster's Feast repo uses a Redis service named `redis`
# in the pipelines' namespace (documented in docs/feature-store.md).
DEFAULT_ONLINE = {"kind": "redis", "connection_string": "redis:6379"}


def _flat(store: dict[str, Any] | None) -> dict[str, Any]:
    """A profile store block `{kind, options: {...}}` as `{"kind": ..., **options}`."""
    if not store:
        return {}
    return {"kind": store["kind"], **(store.get("options") or {})}


def default_registry(plan: Plan) -> str:
    root = str(plan.platform_settings.get("pipeline_root", "")).rstrip("/")
    return f"{root}/feast/{project_name(plan)}/registry.db"


# ---------------------------------------------------------------------------- check


def check(plan: Plan, target: str) -> list[Diagnostic]:
    """What the platform's Feast stores cannot hold of the spec's feature store, each at the
    spec location: a source the offline store cannot read, a dtype it cannot hold. (Where
    the registry lives is the profile's business: checked by its model.)"""
    store = store_settings(plan)
    problems: list[Diagnostic] = []
    used = {v.source for v in plan.features.views}
    offline = store.offline["kind"]
    for source in plan.features.sources:
        if source.name not in used or store.local:
            continue
        reason = _unreadable(source, offline)
        if reason is not None:
            message, hint = reason
            problems.append(unsupported(source.origin, target, f"source '{source.name}': {message}", hint))
    refused = UNSUPPORTED_DTYPES.get(offline, {})
    for view in plan.features.views:
        for index, feature in enumerate(view.features):
            if feature.dtype in refused:
                problems.append(unsupported(
                    view.origin.below(f"features[{index}]", "dtype"), target,
                    f"feature '{view.name}:{feature.name}' is {feature.dtype}: {refused[feature.dtype]}, the offline store of this profile",
                    "declare it int64 / float64 (or override the dtype for this profile)",
                ))  # fmt: skip
    return problems


def _unreadable(source: DataSource, offline: str) -> tuple[str, str] | None:
    """Why the offline store cannot read the source (message, hint), or None."""
    scheme = source.uri.split("://", 1)[0]
    if offline == "bigquery":
        if scheme == "bq":
            return None
        return (
            f"Feast's BigQuery offline store reads BigQuery tables, not {scheme}:// files",
            "use a bq:// table for this profile (overrides), or offline store kind file / spark",
        )
    if offline == "file":
        if scheme in FILE_SCHEMES and source.format == "parquet":
            return None
        if scheme == "bq":
            return "a BigQuery table needs Feast's BigQuery offline store", "set `kubeflow.feature_store.offline: {kind: bigquery, …}` in the profile"
        return (
            f"Feast's file offline store reads parquet files, not {source.format}",
            "store the source as parquet (format: parquet), or use offline store kind spark",
        )
    if offline == "spark":
        if scheme in FILE_SCHEMES and source.format in ("parquet", "csv"):
            return None
        return (
            f"Feast's Spark offline store reads parquet or csv files, not {scheme}:// {source.format}",
            "use a gs://, s3:// or abfss:// parquet file for this profile",
        )
    store = {"redshift": "Redshift", "snowflake": "Snowflake"}.get(offline, offline)
    return (
        f"Feast's {store} offline store reads {store} tables, and a {scheme}:// URI names none",
        "use offline store kind file or spark for files, bigquery for bq:// tables",
    )


# ---------------------------------------------------------------------------- render


def render(plan: Plan) -> list[OutputFile]:
    """feature_repo/feature_store.yaml and feature_repo/<system>_features.py."""
    from mlcompile import __version__

    store = store_settings(plan)
    # No spec hash here: the repository changes only when the feature store does, so that a
    # diff of two builds shows a serving or training change without a feature store change.
    header = f"Generated by mlcompile {__version__} from the features of system {plan.system}; do not edit: change the spec and build again."
    config = _template("feature_store.yaml.j2").render(
        header=header,
        project=project_name(plan),
        provider=store.provider,
        registry=store.registry,
        offline=_store_block(OFFLINE_TYPES, store.offline),
        online=_store_block(ONLINE_TYPES, store.online),
    )
    definitions = _template("features.py.j2").render(header=header, **definitions_context(plan, store))
    return [
        OutputFile(f"{REPO_DIR}/feature_store.yaml", KIND_CONFIG, config.encode()),
        OutputFile(f"{REPO_DIR}/{module_name(plan)}.py", KIND_REPO, definitions.encode()),
    ]


def _store_block(types: dict[str, str], settings: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, YAML scalar) pairs of a store block: Feast's type first, then the options sorted."""
    pairs = [("type", yaml_emit.scalar(types[settings["kind"]]))]
    for key in sorted(k for k in settings if k != "kind"):
        pairs.append((key, yaml_emit.scalar(secret_to_env(settings[key]))))
    return pairs


# a secret reference inside an option value (Redis puts the password in its connection string)
SECRET_IN_VALUE = re.compile(r"secret://([A-Za-z0-9][A-Za-z0-9._/-]*)")


def secret_to_env(value: Any) -> Any:
    """Each `secret://NAME` in a value → `${MLCOMPILE_SECRET_NAME}`; other values as they are."""
    if isinstance(value, str):
        return SECRET_IN_VALUE.sub(lambda m: "${" + secret_env(m.group(1)) + "}", value)
    return value


def secret_env(name: str) -> str:
    return SECRET_ENV_PREFIX + "".join(c if c.isalnum() else "_" for c in name).upper()


def secrets_of(plan: Plan) -> list[str]:
    """Names of the secrets the repo's feature_store.yaml refers to (the pods that load it
    carry each as environment variable `secret_env(name)`)."""
    store = store_settings(plan)
    values = [v for v in (*store.offline.values(), *store.online.values()) if isinstance(v, str)]
    return sorted({name for v in values for name in SECRET_IN_VALUE.findall(v)})


def _identifier(prefix: str, name: str) -> str:
    return f"{prefix}_{name.replace('-', '_')}"


def definitions_context(plan: Plan, store: StoreSettings) -> dict[str, Any]:
    features = plan.features
    used_sources = [s for s in features.sources if any(v.source == s.name for v in features.views)]
    entities = [{"var": _identifier("entity", e.name), "name": e.name, "join_keys": list(e.join_keys)} for e in features.entities]
    sources = [_source(s, store) for s in used_sources]
    source_var = {s.name: _identifier("source", s.name) for s in used_sources}
    entity_var = {e.name: _identifier("entity", e.name) for e in features.entities}
    views = [
        {
            "var": _identifier("view", v.name),
            "name": v.name,
            "entities": [entity_var[e] for e in v.entities],
            "ttl_seconds": v.ttl_seconds,
            "online": v.online,
            "source": source_var[v.source],
            "fields": [{"name": f.name, "type": FEAST_TYPES[f.dtype]} for f in v.features],
            "refresh_cron": v.refresh_cron,
        }
        for v in features.views
    ]
    service: dict[str, list[str]] = {}
    for ref in plan.model_features():
        service.setdefault(ref.view, []).append(ref.feature)
    view_var = {v.name: _identifier("view", v.name) for v in features.views}
    imports = sorted({s["class"] for s in sources if s["module"] == "feast"} | {"Entity", "FeatureService", "FeatureView", "Field"})
    extra_imports = sorted({(s["module"], s["class"]) for s in sources if s["module"] != "feast"})
    formats = sorted({s["format_class"] for s in sources if s.get("format_class")})
    return {
        "imports": imports,
        "extra_imports": extra_imports,
        "format_imports": formats,
        "types": sorted({f["type"] for v in views for f in v["fields"]}),
        "entities": entities,
        "sources": sources,
        "views": views,
        "service": {"name": plan.system, "projections": [{"var": view_var[v], "features": fs} for v, fs in service.items()]},
        "tags": {"mlcompile-system": plan.system},
    }


def _source(source: DataSource, store: StoreSettings) -> dict[str, Any]:
    base = {"var": _identifier("source", source.name), "name": source.name, "timestamp_field": source.timestamp_field, "module": "feast"}
    if store.local:
        # the local run stages every source (csv or parquet, any URI it reads) as parquet here
        return {
            **base,
            "class": "FileSource",
            "args": {"path": f"{LOCAL_DATA_DIR}/{source.name}.parquet"},
            "format_class": "ParquetFormat",
            "file_format": "ParquetFormat()",
        }
    kind = store.offline["kind"]
    if kind == "bigquery":
        return {**base, "class": "BigQuerySource", "args": {"table": source.uri.split("://", 1)[1]}}
    if kind == "spark":
        return {
            **base,
            "class": "SparkSource",
            "module": "feast.infra.offline_stores.contrib.spark_offline_store.spark_source",
            "args": {"path": source.uri, "file_format": source.format},
        }
    return {**base, "class": "FileSource", "args": {"path": source.uri}, "format_class": "ParquetFormat", "file_format": "ParquetFormat()"}


@cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("mlcompile.targets.feast_repo", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _template(name: str) -> Any:
    env = _environment()
    env.filters.setdefault("py", repr)
    env.filters.setdefault("yaml", yaml_emit.scalar)
    return env.get_template(name)
