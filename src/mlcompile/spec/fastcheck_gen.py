"""Writes `spec/fastcheck.json`: the system spec's models (`spec/models.py`) as a table of
fields, types, constraints and defaults that `spec/fastcheck.py` checks a spec against
without importing pydantic.

    python -m mlcompile.spec.fastcheck_gen           # rewrite the shipped table
    python -m mlcompile.spec.fastcheck_gen --check   # exit 1 when it is stale

A construct the table cannot express stops the generator: the models and the table change
together (tests/test_fastcheck.py runs the --check)."""

from __future__ import annotations

import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mlcompile.generated_files import write_or_check
from mlcompile.spec import values
from mlcompile.spec.models import MLSystem

TABLE_FILE = Path(__file__).with_name("fastcheck.json")

_BOUNDS = {annotated_types.Gt: "gt", annotated_types.Ge: "ge", annotated_types.Lt: "lt", annotated_types.Le: "le"}
_LENGTHS = {annotated_types.MinLen: "min_length", annotated_types.MaxLen: "max_length"}
_SCALARS = {str: "str", int: "int", float: "float", bool: "bool"}


def _constraints(metadata: list[Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):  # Field(...) inside Annotated: its own metadata
            out.update(_constraints(item.metadata, where))
            if item.discriminator is not None:
                out["discriminator"] = item.discriminator
        elif type(item) in _BOUNDS:
            out[_BOUNDS[type(item)]] = getattr(item, _BOUNDS[type(item)])
        elif type(item) in _LENGTHS:
            out[_LENGTHS[type(item)]] = getattr(item, _LENGTHS[type(item)])
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            out["pattern"] = item.pattern
        elif type(item).__name__ == "AfterValidator":
            out.setdefault("checks", []).append(_check(item.func, where))
        else:
            raise TypeError(f"{where}: no table form for the constraint {item!r}")
    return out


def _check(func: Any, where: str) -> list[str]:
    """A string check: the same function from spec/values.py, or the pattern a
    `values.matching` check fully matches."""
    if func.__module__ == values.__name__ and func.__name__ == "check":
        return ["fullmatch", inspect.getclosurevars(func).nonlocals["compiled"].pattern]
    name: str = func.__name__
    if func.__module__ == values.__name__ and getattr(values, name, None) is func:
        return ["call", name]
    raise TypeError(f"{where}: the check {func!r} is not a function of spec/values.py")


def _type(annotation: Any, metadata: list[Any], where: str, models: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _type(args[0], [*args[1:], *metadata], where, models)
    found = _constraints(metadata, where)
    discriminator = found.pop("discriminator", None)
    if annotation is Any:
        kind: dict[str, Any] = {"kind": "any"}
    elif annotation in _SCALARS:
        kind = {"kind": _SCALARS[annotation]}
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _model(annotation, models)
        kind = {"kind": "model", "name": annotation.__name__}
    elif origin is Literal:
        kind = {"kind": "literal", "values": list(args)}
    elif origin in (Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        inner = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        # a field's constraints (`int | None = Field(ge=1)`) hold for its value when it has one
        return {"kind": "optional", "of": _type(inner, metadata, where, models)}
    elif origin in (Union, types.UnionType) and discriminator is not None:
        choices = {}
        for arg in args:
            _model(arg, models)
            (tag,) = typing.get_args(arg.model_fields[discriminator].annotation)
            choices[tag] = arg.__name__
        kind = {"kind": "tagged", "tag": discriminator, "choices": choices}
    elif origin in (Union, types.UnionType):
        kind = {"kind": "union", "of": [_type(arg, [], where, models) for arg in args]}
    elif origin is list:
        kind = {"kind": "list", "of": _type(args[0], [], f"{where}[]", models)}
    elif origin is dict:
        kind = {"kind": "dict", "keys": _type(args[0], [], f"{where}{{}}", models), "values": _type(args[1], [], f"{where}{{}}", models)}
    else:
        raise TypeError(f"{where}: no table form for the type {annotation!r}")
    if discriminator is not None and kind["kind"] != "tagged":
        raise TypeError(f"{where}: a discriminator on {annotation!r}")
    if found and kind["kind"] not in ("str", "int", "float", "list", "dict"):
        raise TypeError(f"{where}: no table form for {sorted(found)} on {annotation!r}")
    return {**kind, **found}


def _default(field: FieldInfo) -> Any:
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    return value.model_dump() if isinstance(value, BaseModel) else value


def _model(model: type[BaseModel], models: dict[str, Any]) -> None:
    if model.__name__ in models:
        return
    models[model.__name__] = None  # placeholder: a model may (indirectly) hold itself
    if model.model_config.get("extra") != "forbid" or model.__pydantic_decorators__.field_validators:
        raise TypeError(f"{model.__name__}: the table knows models that forbid extra keys and have no field validators")
    fields = {}
    for name, field in model.model_fields.items():
        if field.alias is not None and field.alias != name:
            raise TypeError(f"{model.__name__}.{name}: aliases have no table form")
        entry: dict[str, Any] = {"type": _type(field.annotation, field.metadata, f"{model.__name__}.{name}", models)}
        if field.is_required():
            entry["required"] = True
        else:
            entry["default"] = _default(field)
        fields[name] = entry
    models[model.__name__] = {"fields": fields, "rules": sorted(model.__pydantic_decorators__.model_validators)}


def generate() -> str:
    models: dict[str, Any] = {}
    _model(MLSystem, models)
    table = {"about": "generated by `python -m mlcompile.spec.fastcheck_gen` from spec/models.py; do not edit", "root": "MLSystem", "models": models}
    # one model per line: a change to the models reads as a small diff
    entries = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry, sort_keys=True)}" for name, entry in sorted(models.items()))
    return "{\n" + f' "about": {json.dumps(table["about"])},\n "root": "MLSystem",\n "models": {{\n{entries}\n }}\n}}\n'


def main(argv: list[str]) -> int:
    return write_or_check(TABLE_FILE, generate(), "python -m mlcompile.spec.fastcheck_gen", argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
