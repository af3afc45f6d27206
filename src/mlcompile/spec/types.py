"""Scalar types of the spec language: names, durations, quantities, cron, time zones, URIs,
feature references and secret references. Each is a string in YAML (so it round-trips and
reads naturally) and carries its pattern into the JSON Schema for editors. The checks
themselves are plain functions in `spec/values.py`."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

# duration_seconds, memory_bytes, memory_gib and uri_scheme: other modules import them from here
from mlcompile.spec.values import (  # noqa: F401
    DATA_URI,
    DNS_LABEL,
    DURATION,
    FEATURE_REF,
    IDENTIFIER,
    ITEM_NAME,
    MEMORY,
    SECRET_REF,
    cron_expression,
    data_uri,
    dns_name,
    duration_seconds,
    matching,
    memory_bytes,
    memory_gib,
    memory_quantity,
    positive_duration,
    secret_reference,
    time_zone,
    uri_scheme,
)

# Each type validates with its own function (for a readable message) and publishes its
# pattern through json_schema_extra: a `pattern=` constraint would be checked first, with
# pydantic's generic wording, and one placed after the validator is left out of the schema.
Name = Annotated[
    str,
    AfterValidator(dns_name),
    Field(json_schema_extra={"pattern": DNS_LABEL, "minLength": 3, "maxLength": 40}, description="lowercase DNS label, 3..40 characters"),
]
ItemName = Annotated[
    str,
    AfterValidator(matching(ITEM_NAME, "a name", "'customer_activity'")),
    Field(json_schema_extra={"pattern": ITEM_NAME}, description="lowercase name: letters, digits, '_' and '-'"),
]
ColumnName = Annotated[
    str,
    AfterValidator(matching(IDENTIFIER, "a column name", "'customer_id'")),
    Field(json_schema_extra={"pattern": IDENTIFIER}),
]
Duration = Annotated[str, AfterValidator(positive_duration), Field(json_schema_extra={"pattern": DURATION}, examples=["30d", "2h"])]
Memory = Annotated[str, AfterValidator(memory_quantity), Field(json_schema_extra={"pattern": MEMORY}, examples=["16Gi", "512Mi"])]
Cron = Annotated[str, AfterValidator(cron_expression), Field(description="5-field cron expression", examples=["0 3 * * *"])]
TimeZone = Annotated[str, AfterValidator(time_zone), Field(description="IANA time zone name", examples=["UTC"])]
DataUri = Annotated[
    str,
    AfterValidator(data_uri),
    Field(json_schema_extra={"pattern": DATA_URI}, description="bq:// gs:// s3:// abfss:// or file:// (relative to the spec)"),
]
FeatureRef = Annotated[
    str,
    AfterValidator(matching(FEATURE_REF, "a feature reference", "'customer_activity:orders_30d'")),
    Field(json_schema_extra={"pattern": FEATURE_REF}, description="<view>:<feature>"),
]
SecretRef = Annotated[str, AfterValidator(secret_reference), Field(json_schema_extra={"pattern": SECRET_REF}, description="secret://<name>")]
