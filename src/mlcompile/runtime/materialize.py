"""The `materialize` step: writes an online view's current values into its platform's online
store, so that serving reads by entity key what training joined.

What is written is what the offline store would answer now: per entity, the newest row of
the view's source that is within the view's ttl (older rows are stale: the online store
would expire them anyway). `params.store` names the store:

    {"kind": "sagemaker", "region": "eu-west-1", "feature_group": "churn-prediction-customer-activity",
     "record_identifier": "customer_id", "event_time": "event_ts"}

SageMaker: one PutRecord per entity through boto3's sagemaker-featurestore-runtime client
(imported only here, when the step runs). Vertex AI syncs its FeatureViews itself and needs
no step."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mlcompile.runtime.io import DataError

KINDS = ("sagemaker",)
WRITERS = 16  # PutRecord calls in flight


def materialize(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    from mlcompile.runtime.features import FeatureStore

    params = config.get("params", {})
    store = params.get("store") or {}
    if store.get("kind") not in KINDS:
        raise DataError(f"materialize: no writer for online store kind {store.get('kind')!r} (known: {', '.join(KINDS)})")
    features = FeatureStore(config["features"])
    view = features.views.get(params.get("view"))
    if view is None:
        raise DataError(f"materialize: unknown view {params.get('view')!r}")
    rows = current_rows(features, view, now=_now(params))
    written = write_sagemaker(store, view, rows)
    return {"view": view["name"], "store": store["kind"], "feature_group": store["feature_group"], "records": written}


def _now(params: dict[str, Any]) -> datetime:
    """The moment the ttl is counted back from: now, or `as_of` (ISO 8601) for a backfill."""
    as_of = params.get("as_of")
    if as_of:
        return datetime.fromisoformat(str(as_of).replace("Z", "+00:00")).astimezone(UTC)
    return datetime.now(UTC)


def current_rows(features: Any, view: dict[str, Any], *, now: datetime) -> list[dict[str, Any]]:
    """Per entity the newest source row at or before `now` and within the ttl, as records
    of {column: value} over the join keys, the timestamp field and the view's features."""
    import pandas as pd

    source = features.source(view["source"])
    ts = features.sources[view["source"]]["timestamp_field"]
    keys = list(view["join_keys"])
    columns = [f["name"] for f in view["features"]]
    missing = [c for c in (*keys, *columns) if c not in source.columns]
    if missing:
        raise DataError(f"view {view['name']}: source {view['source']} has no column {', '.join(missing)}")
    moment = pd.Timestamp(now)
    fresh = source[(source[ts] <= moment) & (source[ts] > moment - pd.Timedelta(seconds=int(view["ttl_seconds"])))]
    newest = fresh.sort_values(ts, kind="stable").drop_duplicates(subset=keys, keep="last")
    newest = newest.sort_values(keys, kind="stable")
    return [{c: row[c] for c in (*keys, ts, *columns)} for row in newest.to_dict("records")]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def iso_utc(value: Any) -> str:
    import pandas as pd

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    if stamp.microsecond:
        text += f".{stamp.microsecond // 1000:03d}"
    return text + "Z"


def as_string(value: Any, dtype: str) -> str:
    """A value as SageMaker Feature Store stores it (see targets/sagemaker/feature_store.py)."""
    if dtype in ("int32", "int64"):
        number = float(value)
        if not number.is_integer():
            raise DataError(f"{value!r} is not an integer")
        return str(int(number))
    if dtype == "bool":
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in ("true", "false", "1", "0", "1.0", "0.0"):
            return "1" if (value is True or text in ("true", "1", "1.0")) else "0"
        raise DataError(f"{value!r} is not a boolean")
    if dtype in ("float32", "float64"):
        number = float(value)
        if not math.isfinite(number):
            raise DataError(f"{value!r} is not a finite number")
        return repr(number)
    if dtype == "timestamp":
        return iso_utc(value)
    return str(value)


def sagemaker_records(store: dict[str, Any], view: dict[str, Any], rows: Iterable[dict[str, Any]]) -> list[list[dict[str, str]]]:
    """PutRecord `Record`s: identifier and event time always, each feature unless missing
    (a feature group takes records without some of their features)."""
    dtypes = {f["name"]: f["dtype"] for f in view["features"]}
    key, event_time = store["record_identifier"], store["event_time"]
    records = []
    for row in rows:
        record = [{"FeatureName": key, "ValueAsString": str(row[key])}, {"FeatureName": event_time, "ValueAsString": iso_utc(row[event_time])}]
        for name, dtype in dtypes.items():
            if _missing(row[name]):
                continue
            try:
                record.append({"FeatureName": name, "ValueAsString": as_string(row[name], dtype)})
            except (DataError, TypeError, ValueError) as exc:
                raise DataError(f"view {view['name']}, entity {row[key]!r}, feature {name} ({dtype}): {exc}") from exc
        records.append(record)
    return records


def write_sagemaker(store: dict[str, Any], view: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    # PutRecord takes one record: a few calls in flight keep a large view within the step's
    # timeout. The endpoint comes from the usual chain (AWS_ENDPOINT_URL…); standard retries
    # back off on the throttling a first materialisation meets.
    client = boto3.client(
        "sagemaker-featurestore-runtime",
        region_name=store["region"],
        config=Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=WRITERS),
    )
    records = sagemaker_records(store, view, rows)
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        list(pool.map(lambda record: client.put_record(FeatureGroupName=store["feature_group"], Record=record), records))
    return len(records)
