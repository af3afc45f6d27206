"""Structural validation: pydantic's errors translated into located, readable diagnostics.

pydantic reports a location as a tuple that mixes data keys with the names of union
branches; we walk it along the actual data so that the json path shown is the user's path,
and phrase each error type the way a person would fix it."""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from mlcompile.diagnostics import Diagnostic, JsonPath, did_you_mean, quoted, shorten
from mlcompile.spec.loader import Document


def _data_path(data: Any, loc: tuple[Any, ...]) -> JsonPath:
    """pydantic's loc without the names of union branches: the path through the user's data."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif last and isinstance(part, (str, int)) and isinstance(current, dict):
            path.append(part)  # a missing or unknown key
            current = None
    return tuple(path)


def _value_at(data: Any, path: JsonPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _unwrap(annotation: Any, value: Any) -> Any:
    """The model class an annotation stands for, given the data found there."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(get_args(annotation)[0], value)
    if origin in (Union, types.UnionType):
        models = [_unwrap(arg, value) for arg in get_args(annotation)]
        models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
        for model in models:  # a discriminated union: pick the branch the data names
            for field_name in ("type", "channel"):
                field = model.model_fields.get(field_name)
                if field is not None and isinstance(value, dict) and value.get(field_name) in get_args(field.annotation):
                    return model
        return models[0] if models else None
    return annotation


def _model_at(root: type[BaseModel], data: Any, path: JsonPath) -> type[BaseModel] | None:
    """The model whose keys are expected at `path` (for did-you-mean on unknown keys)."""
    model: Any = root
    current: Any = data
    pending: Any = None
    for part in path:
        if pending is not None:  # inside a list or dict annotation
            annotation, pending = pending, None
        else:
            if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
                return None
            annotation = model.model_fields[part].annotation
        current = _child(current, part)
        inner = _unwrap(annotation, current)
        origin = get_origin(inner)
        if origin in (list, dict):
            pending = get_args(inner)[-1]
            model = None
        else:
            model = inner
    if pending is not None:
        return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _child(container: Any, part: str | int) -> Any:
    """The value at `part` of a dict or list, or None."""
    if isinstance(container, dict):
        return container.get(part)
    if isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container):
        return container[part]
    return None


def _describe(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", int: "a number", float: "a number", str: "a string"}
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"  # as YAML spells it
    return "null" if value is None else f"{kind.get(type(value), type(value).__name__)} ({_short(value)})"


def _examples(root: type[BaseModel], data: Any, path: JsonPath) -> list[Any]:
    """The examples the schema gives for the field at `path` (durations, quantities, cron)."""
    model = _model_at(root, data, path[:-1]) if path else None
    field = model.model_fields.get(str(path[-1])) if model else None
    if field is None:
        return []
    if field.examples:
        return list(field.examples)
    for arg in get_args(field.annotation):  # an optional field: Duration | None
        for meta in getattr(arg, "__metadata__", ()):
            if isinstance(meta, FieldInfo) and meta.examples:
                return list(meta.examples)
    return []


def _short(value: Any) -> str:
    return quoted(value)


def _expected_values(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _field_examples(root: type[BaseModel], data: Any, path: JsonPath) -> list[Any]:
    model = _model_at(root, data, path[:-1]) if path else None
    field = model.model_fields.get(str(path[-1])) if model is not None else None
    return list(field.examples or []) if field is not None else []


def _phrase(error: ErrorDetails, root: type[BaseModel], data: Any, path: JsonPath) -> tuple[str, str | None, bool]:
    """(message, hint, points at the key rather than the value) for one pydantic error."""
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    name = path[-1] if path else ""
    if kind == "missing":
        return f"missing required key '{name}'", None, True
    if kind == "extra_forbidden":
        model = _model_at(root, data, path[:-1])
        hint = did_you_mean(str(name), model.model_fields) if model else None
        if model and not hint:
            hint = "allowed keys: " + ", ".join(model.model_fields)
        return f"unknown key '{shorten(str(name))}'", hint, True
    if kind == "literal_error":
        choices = _expected_values(ctx.get("expected", ""))
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else None
        return f"{_short(value)} is not one of {ctx.get('expected')}", hint, False
    if kind in ("union_tag_invalid",):
        choices = _expected_values(str(ctx.get("expected_tags", "")))
        hint = did_you_mean(str(ctx.get("tag")), choices)
        return f"unknown {name} {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}", hint, False
    if kind == "union_tag_not_found":
        return f"missing required key {ctx.get('discriminator')}", None, False
    if kind == "value_error":
        return str(ctx.get("error", error["msg"])), None, False
    if kind == "string_type":
        hint = None
        if isinstance(value, (int, float, bool)):
            examples = _examples(root, data, path)  # `ttl: 30` needs a unit, not quotes
            hint = "for example " + " or ".join(f"'{e}'" for e in examples) if examples else "quote it to make it a string"
        return f"expected a string, got {_describe(value)}", hint, False
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {_describe(value)}", None, False
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {_describe(value)}", None, False
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_describe(value)}", None, False
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping, got {_describe(value)}", None, False
    if kind == "list_type":
        return f"expected a list, got {_describe(value)}", None, False
    if kind == "too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"needs at least {ctx.get('min_length')} items", None, False
    if kind == "string_too_short":
        return f"{_short(value)} is shorter than {ctx.get('min_length')} characters", None, False
    if kind == "string_too_long":
        return f"{_short(value)} is longer than {ctx.get('max_length')} characters", None, False
    if kind == "string_pattern_mismatch":
        examples = _field_examples(root, data, path)
        if examples:
            return f"{_short(value)} is not a valid {name} (for example {' or '.join(repr(e) for e in examples)})", f"pattern: {ctx.get('pattern')}", False
        return f"{_short(value)} does not match the pattern {ctx.get('pattern')}", None, False
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than", "less_than_equal": "at most"}
        bound = next(iter(ctx.values()), "")
        return f"must be {words[kind]} {bound}, got {_short(value)}", None, False
    message = error["msg"]
    return message[:1].lower() + message[1:], None, False


def structural_diagnostics(document: Document, model: type[BaseModel], exc: ValidationError) -> list[Diagnostic]:
    """Every pydantic error of one validation, as located diagnostics (union noise removed)."""
    found: dict[tuple[JsonPath, str], Diagnostic] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = _data_path(document.data, loc)
        if error["type"] == "union_tag_invalid":
            path = (*path, str((error.get("ctx") or {}).get("discriminator", "")).strip("'"))
        message, hint, at_key = _phrase(error, model, document.data, path)
        if error["type"] == "extra_forbidden" or (error["type"] == "missing" and path):
            located_path = path if error["type"] == "extra_forbidden" else path[:-1]
        else:
            located_path = path
        diagnostic = document.source_map.diagnostic(located_path, message, hint=hint, key=at_key, shown_path=path)
        found.setdefault((path, message), diagnostic)
    return _drop_union_noise(document.data, found)


def _drop_union_noise(data: Any, found: dict[tuple[JsonPath, str], Diagnostic]) -> list[Diagnostic]:
    """A value that fails a union is reported by every branch; keep the branch whose shape
    matches the value (a list reported by the list branch, not by the literal branch)."""
    kept = []
    for (path, message), diagnostic in found.items():
        value = _value_at(data, path)
        scalar_complaint = message.endswith(("is not one of 'all'",)) or message.startswith("expected a string")
        siblings = [p for (p, _m) in found if p != path and p[: len(path)] == path]
        if scalar_complaint and isinstance(value, (list, dict)) and siblings:
            continue
        kept.append(diagnostic)
    return kept
