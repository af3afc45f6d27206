"""Scalar types of the spec language: names, durations, quantities, cron, time zones, URIs,
feature references and secret references. Each is a string in YAML (so it round-trips and
reads naturally) and carries its pattern into the JSON Schema for editors."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from functools import cache
from typing import Annotated

from pydantic import AfterValidator, Field

from mlcompile.diagnostics import quoted

DNS_LABEL = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
ITEM_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
DATA_URI = r"^(bq|gs|s3|abfss|file)://.+$"
DURATION = r"^[0-9]+(s|m|h|d)$"
MEMORY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)$"
FEATURE_REF = r"^[a-z0-9][a-z0-9_-]*:[A-Za-z_][A-Za-z0-9_]*$"
SECRET_REF = r"^secret://[A-Za-z0-9][A-Za-z0-9._/-]*$"
URI_SCHEMES = ("bq", "gs", "s3", "abfss", "file")

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MEMORY_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def _matching(pattern: str, what: str, example: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        # fullmatch: with match, the patterns' `$` would accept a trailing newline ("churn\n")
        if not compiled.fullmatch(value):
            raise ValueError(f"{_shorten(value)} is not {what} (for example {example})")
        return value

    return check


def _name(value: str) -> str:
    if not 3 <= len(value) <= 40:
        raise ValueError(f"{_shorten(value)} must be 3 to 40 characters long")
    if not re.fullmatch(DNS_LABEL, value):  # names become folders and file names: no trailing newline
        raise ValueError(f"{_shorten(value)} must be lowercase letters, digits and '-', starting and ending with a letter or digit")
    return value


def duration_seconds(text: str) -> int:
    return int(text[:-1]) * _DURATION_UNITS[text[-1]]


def memory_bytes(text: str) -> int:
    return int(float(text[:-2]) * _MEMORY_UNITS[text[-2:]])


def memory_gib(text: str) -> float:
    return memory_bytes(text) / 1024**3


def _positive_duration(value: str) -> str:
    _matching(DURATION, "a duration", "'30d', '2h', '90m'")(value)
    if duration_seconds(value) == 0:
        raise ValueError(f"{_shorten(value)} must be longer than zero")
    return value


MAX_MEMORY_BYTES = 1024**5  # 1024Ti: far beyond any machine, and within float range


def _memory(value: str) -> str:
    _matching(MEMORY, "a memory quantity", "'16Gi', '512Mi'")(value)
    if float(value[:-2]) * _MEMORY_UNITS[value[-2:]] > MAX_MEMORY_BYTES:
        raise ValueError(f"{_shorten(value)} is more than 1024Ti")
    if memory_bytes(value) == 0:
        raise ValueError(f"{_shorten(value)} must be more than zero")
    return value


def _shorten(value: str) -> str:
    return quoted(value)


def cron_problem(expression: str) -> str | None:
    """Why a 5-field cron expression is invalid, or None when it is valid."""
    from cronsim import CronSim, CronSimError

    fields = expression.split()
    if len(fields) != 5:
        return f"{_shorten(expression)} has {len(fields)} fields; a cron expression has 5 (minute hour day month weekday)"
    try:
        CronSim(expression, datetime(2025, 1, 1))
    except CronSimError as exc:
        return f"{_shorten(expression)} is not a valid cron expression: {str(exc).lower()}"
    return None


def _cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise ValueError(problem)
    return value


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_names() -> frozenset[str]:
    return _zones()


def _timezone(value: str) -> str:
    if value != "UTC" and value not in _zones():
        raise ValueError(f"{_shorten(value)} is not an IANA time zone (for example 'UTC', 'Europe/Berlin')")
    return value


def uri_scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else ""


def _uri(value: str) -> str:
    scheme = uri_scheme(value)
    if scheme not in URI_SCHEMES or not value.split("://", 1)[1]:
        schemes = ", ".join(f"{s}://" for s in URI_SCHEMES)
        raise ValueError(f"{_shorten(value)} is not a data URI; use one of {schemes}")
    return value


def _secret(value: str) -> str:
    return _matching(SECRET_REF, "a secret reference", "'secret://team-webhook'")(value)


# Each type validates with its own function (for a readable message) and publishes its
# pattern through json_schema_extra: a `pattern=` constraint would be checked first, with
# pydantic's generic wording, and one placed after the validator is left out of the schema.
Name = Annotated[
    str,
    AfterValidator(_name),
    Field(json_schema_extra={"pattern": DNS_LABEL, "minLength": 3, "maxLength": 40}, description="lowercase DNS label, 3..40 characters"),
]
ItemName = Annotated[
    str,
    AfterValidator(_matching(ITEM_NAME, "a name", "'customer_activity'")),
    Field(json_schema_extra={"pattern": ITEM_NAME}, description="lowercase name: letters, digits, '_' and '-'"),
]
ColumnName = Annotated[
    str,
    AfterValidator(_matching(IDENTIFIER, "a column name", "'customer_id'")),
    Field(json_schema_extra={"pattern": IDENTIFIER}),
]
Duration = Annotated[str, AfterValidator(_positive_duration), Field(json_schema_extra={"pattern": DURATION}, examples=["30d", "2h"])]
Memory = Annotated[str, AfterValidator(_memory), Field(json_schema_extra={"pattern": MEMORY}, examples=["16Gi", "512Mi"])]
Cron = Annotated[str, AfterValidator(_cron), Field(description="5-field cron expression", examples=["0 3 * * *"])]
TimeZone = Annotated[str, AfterValidator(_timezone), Field(description="IANA time zone name", examples=["UTC"])]
DataUri = Annotated[
    str,
    AfterValidator(_uri),
    Field(json_schema_extra={"pattern": DATA_URI}, description="bq:// gs:// s3:// abfss:// or file:// (relative to the spec)"),
]
FeatureRef = Annotated[
    str,
    AfterValidator(_matching(FEATURE_REF, "a feature reference", "'customer_activity:orders_30d'")),
    Field(json_schema_extra={"pattern": FEATURE_REF}, description="<view>:<feature>"),
]
SecretRef = Annotated[str, AfterValidator(_secret), Field(json_schema_extra={"pattern": SECRET_REF}, description="secret://<name>")]
