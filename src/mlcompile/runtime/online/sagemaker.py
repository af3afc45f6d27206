"""Online feature reads from SageMaker Feature Store: BatchGetRecord per feature group, up to
100 entities a call (boto3's sagemaker-featurestore-runtime client, imported only when a
reader is made; endpoint and credentials from the usual AWS chain).

The kind's settings in MLCOMPILE_ONLINE_FEATURES (written by targets/sagemaker/feature_store.py):

    {"kind": "sagemaker", "entity_keys": [...], "features": ["view:feature", ...], "region": "eu-west-1",
     "views": {"<view>": {"feature_group": "<name>", "record_identifier": "customer_id",
                         "dtypes": {"<feature>": "int64", ...}}}}

Feature Store returns every value as a string; `dtypes` turns them back into what the model
was trained on (int, float, bool, str; timestamps stay ISO 8601 strings). A record the
online store does not hold — never written, or expired after the view's ttl — reads as None."""

from __future__ import annotations

from typing import Any

from mlcompile.runtime.online import features_by_view

BATCH = 100  # identifiers per BatchGetRecord


def parse(value: str | None, dtype: str) -> Any:
    if value is None:
        return None
    if dtype in ("int32", "int64"):
        return int(value)
    if dtype in ("float32", "float64"):
        return float(value)
    if dtype == "bool":
        return value.strip().lower() in ("1", "true")
    return value


class SageMakerReader:
    def __init__(self, config: dict[str, Any], client: Any = None):
        self.config = config
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "sagemaker-featurestore-runtime", region_name=config["region"], config=Config(retries={"mode": "standard", "max_attempts": 3})
            )
        self.client = client

    def read(self, entities: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
        by_view = features_by_view(features, self.config["views"])
        rows: list[dict[str, Any]] = [{} for _ in entities]
        for view, names in by_view.items():
            spec = self.config["views"][view]
            key = spec["record_identifier"]
            missing = [e for e in entities if key not in e]
            if missing:
                raise ValueError(f"entity {missing[0]}: no {key} (view {view} is keyed by {key})")
            identifiers = [str(e[key]) for e in entities]
            records = self._records(spec["feature_group"], list(dict.fromkeys(identifiers)), names)
            for row, identifier in zip(rows, identifiers):
                record = records.get(identifier, {})
                for name in names:
                    row[f"{view}:{name}"] = parse(record.get(name), spec["dtypes"].get(name, "string"))
        return rows

    def _records(self, group: str, identifiers: list[str], names: list[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(identifiers), BATCH):
            chunk = identifiers[start : start + BATCH]
            response = self.client.batch_get_record(Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": chunk, "FeatureNames": names}])
            if response.get("Errors"):
                error = response["Errors"][0]
                raise RuntimeError(
                    f"feature group {group}, record {error.get('RecordIdentifierValueAsString')}: {error.get('ErrorCode')}: {error.get('ErrorMessage')}"
                )
            if response.get("UnprocessedIdentifiers"):
                raise RuntimeError(
                    f"feature group {group}: {len(response['UnprocessedIdentifiers'])} identifier sets left unprocessed (throttled): retry the request"
                )
            for record in response.get("Records", []):
                found[record["RecordIdentifierValueAsString"]] = {f["FeatureName"]: f.get("ValueAsString") for f in record["Record"]}
        return found


def make_reader(config: dict[str, Any]) -> SageMakerReader:
    return SageMakerReader(config)
