"""The checks behind the spec language's scalar types (`spec/types.py`): names, durations,
quantities, cron, time zones, URIs, feature references and secret references. Plain
functions, without pydantic, so that `validate` can check a spec before (or without)
building the models (`spec/fastcheck.py`)."""

from __future__ import annotations

import importlib.util
import os
import re
from functools import cache

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


def matching(pattern: str, what: str, example: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        # fullmatch: with match, the patterns' `$` would accept a trailing newline ("churn\n")
        if not compiled.fullmatch(value):
            raise ValueError(f"{_shorten(value)} is not {what} (for example {example})")
        return value

    return check


def dns_name(value: str) -> str:
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


def positive_duration(value: str) -> str:
    matching(DURATION, "a duration", "'30d', '2h', '90m'")(value)
    if duration_seconds(value) == 0:
        raise ValueError(f"{_shorten(value)} must be longer than zero")
    return value


MAX_MEMORY_BYTES = 1024**5  # 1024Ti: far beyond any machine, and within float range


def memory_quantity(value: str) -> str:
    matching(MEMORY, "a memory quantity", "'16Gi', '512Mi'")(value)
    if float(value[:-2]) * _MEMORY_UNITS[value[-2:]] > MAX_MEMORY_BYTES:
        raise ValueError(f"{_shorten(value)} is more than 1024Ti")
    if memory_bytes(value) == 0:
        raise ValueError(f"{_shorten(value)} must be more than zero")
    return value


def _shorten(value: str) -> str:
    return quoted(value)


def cron_problem(expression: str) -> str | None:
    """Why a 5-field cron expression is invalid, or None when it is valid."""
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    fields = expression.split()
    if len(fields) != 5:
        return f"{_shorten(expression)} has {len(fields)} fields; a cron expression has 5 (minute hour day month weekday)"
    try:
        CronSim(expression, datetime(2025, 1, 1))
    except CronSimError as exc:
        return f"{_shorten(expression)} is not a valid cron expression: {str(exc).lower()}"
    return None


def cron_expression(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise ValueError(problem)
    return value


@cache
def _zones() -> frozenset[str]:
    import zoneinfo  # only for a spec that names a time zone other than UTC

    return frozenset(zoneinfo.available_timezones())


def is_listed_time_zone(key: str) -> bool:
    """Whether `zoneinfo.available_timezones()` lists `key`, for this one name: listing them
    all opens every file of the time zone database, a sixth of a small spec's `validate`. It
    lists the names of the tzdata package's list, and those found the way it finds them in
    each TZPATH folder (os.walk, right/ and posix/ left out, not into linked folders; a file
    that starts with b"TZif"), but never posixrules."""
    tzdata = _tzdata_zones()
    if tzdata is None:
        return key in _zones()
    parts = key.split("/")
    if key == "posixrules" or key in tzdata or (len(parts) > 1 and parts[0] in ("right", "posix")):
        return key != "posixrules" and key in tzdata
    import zoneinfo

    return any(os.path.exists(root) and _zone_file(root, parts) for root in zoneinfo.TZPATH)


@cache
def _tzdata_zones() -> frozenset[str] | None:
    """The tzdata package's list of zones (empty without tzdata; None when the list is not a
    file to read here)."""
    spec = importlib.util.find_spec("tzdata")
    if spec is None:
        return frozenset()
    for folder in spec.submodule_search_locations or ():
        path = os.path.join(folder, "zones")
        if os.path.isfile(path):
            with open(path) as zones:  # as zoneinfo opens it
                return frozenset(stripped for line in zones if (stripped := line.strip()))
    return None


def _zone_file(root: str, parts: list[str]) -> bool:
    folder = root
    for depth, part in enumerate(parts):
        try:
            with os.scandir(folder) as entries:
                entry = next((e for e in entries if e.name == part), None)
            is_dir = entry is not None and entry.is_dir()
        except OSError:
            return False
        if entry is None or is_dir != (depth < len(parts) - 1) or (is_dir and entry.is_symlink()):
            return False
        folder = entry.path
    try:
        with open(folder, "rb") as file:
            return file.read(4) == b"TZif"
    except OSError:
        return False


def time_zone(value: str) -> str:
    if value != "UTC" and not is_listed_time_zone(value):
        raise ValueError(f"{_shorten(value)} is not an IANA time zone (for example 'UTC', 'Europe/Berlin')")
    return value


def uri_scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else ""


def data_uri(value: str) -> str:
    scheme = uri_scheme(value)
    if scheme not in URI_SCHEMES or not value.split("://", 1)[1]:
        schemes = ", ".join(f"{s}://" for s in URI_SCHEMES)
        raise ValueError(f"{_shorten(value)} is not a data URI; use one of {schemes}")
    return value


def secret_reference(value: str) -> str:
    return matching(SECRET_REF, "a secret reference", "'secret://team-webhook'")(value)
