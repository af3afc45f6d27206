"""The plan as JSON (`plan.json`, manifest kind `mlcompile.plan`) and its JSON Schema."""

from __future__ import annotations

import posixpath
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from mlcompile.plan.nodes import Plan


@cache
def _adapter() -> TypeAdapter[Plan]:
    return TypeAdapter(Plan)


def plan_to_data(plan: Plan) -> dict[str, Any]:
    """Plain data, with spec locations reduced to the spec's file name so that the output
    does not depend on the directory mlcompile was run from."""
    data = _adapter().dump_python(plan, mode="json")
    _relative_origins(data)
    return data


def plan_from_data(data: dict[str, Any]) -> Plan:
    return _adapter().validate_python(data)


def plan_schema() -> dict[str, Any]:
    schema = _adapter().json_schema()
    schema["title"] = "mlcompile plan (plan.json)"
    return schema


def _relative_origins(value: Any) -> None:
    if isinstance(value, dict):
        if set(value) == {"file", "line", "col", "path"}:
            value["file"] = posixpath.basename(str(value["file"]).replace("\\", "/"))
            return
        for item in value.values():
            _relative_origins(item)
    elif isinstance(value, list):
        for item in value:
            _relative_origins(item)
