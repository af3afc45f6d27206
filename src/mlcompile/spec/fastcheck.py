"""`validate` of a spec alone, without pydantic: the editor's and pre-commit's path.

Importing pydantic and building the spec's models takes longer than the rest of a `validate`
together. A spec with no profiles (no --target, no `targets/` beside it) is checked here
instead against `fastcheck.json`, a table of the models' fields, types, constraints and
defaults generated from `spec/models.py` (`python -m mlcompile.spec.fastcheck_gen`), and
the cross-reference rules (`spec/checks.py`) read its fields from plain views.

This path only ever says "valid": at the first thing it does not accept, whatever the
reason, the caller takes the full path (`load_system`), which produces the located errors.
It is stricter than pydantic where that is simpler (no type coercion, no non-finite floats,
no newline or non-ASCII text where a pattern applies): such a spec just takes the longer way.
tests/test_fastcheck.py holds it to the models: the same values for every valid spec, and
never "valid" for a spec the models refuse."""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mlcompile.diagnostics import Diagnostic, errors_in
from mlcompile.errors import SpecError
from mlcompile.spec import values
from mlcompile.spec.checks import check_characters, check_literal_secrets, check_system
from mlcompile.spec.loader import display_path, kind_problem, load_yaml_file

TABLE_FILE = Path(__file__).with_name("fastcheck.json")
NO_PROFILES = " (no target profiles found; pass --target to check builds)"


class View(SimpleNamespace):
    """A model's fields, read as attributes, as the rules read the pydantic model's."""


class _NotAccepted(Exception):
    """Somewhere the table does not accept the spec: the full path decides."""


def _rule_holds(model: str, rule: str, fields: dict[str, Any]) -> bool:
    # The models' own model validators, by name. One not listed here is not accepted, so
    # a new validator sends every spec that uses its model down the full path.
    if (model, rule) == ("Trainer", "_exactly_one"):
        return (fields["container"] is None) != (fields["sklearn"] is None)
    if (model, rule) == ("Gate", "_exactly_one"):
        return sum(fields[k] is not None for k in ("min", "max", "min_delta_vs_production")) == 1
    if (model, rule) == ("Deployment", "_at_least_one"):
        return fields["online"] is not None or fields["batch"] is not None
    # non-finite numbers are refused everywhere before the walk
    return (model, rule) == ("SklearnTrainer", "_finite_params")


@functools.cache
def _table() -> dict[str, Any]:
    return json.loads(TABLE_FILE.read_text(encoding="utf-8"))


def _require(condition: bool) -> None:
    if not condition:
        raise _NotAccepted


def _bounded(kind: dict[str, Any], value: Any) -> None:
    for key, holds in (("gt", lambda b: value > b), ("ge", lambda b: value >= b), ("lt", lambda b: value < b), ("le", lambda b: value <= b)):
        if key in kind:
            _require(holds(kind[key]))
    if "min_length" in kind:
        _require(len(value) >= kind["min_length"])
    if "max_length" in kind:
        _require(len(value) <= kind["max_length"])


def _text(kind: dict[str, Any], value: Any) -> str:
    _require(type(value) is str)
    _bounded(kind, value)
    if "pattern" in kind:
        # pydantic matches patterns with Rust's regex, whose `$` (unlike Python's) does not
        # match before a final newline; outside ASCII the two engines' classes may differ
        _require(value.isascii() and "\n" not in value and re.search(kind["pattern"], value) is not None)
    for how, what in kind.get("checks", ()):
        if how == "fullmatch":
            _require(re.fullmatch(what, value) is not None)
        else:
            try:
                getattr(values, what)(value)
            except Exception:  # whatever it is, the full path meets it as before
                raise _NotAccepted from None
    return value


def _checked(kind: dict[str, Any], value: Any) -> Any:
    """The value as the model holds it, or _NotAccepted."""
    name = kind["kind"]
    if name == "str":
        return _text(kind, value)
    if name == "int":
        _require(type(value) is int)
        _bounded(kind, value)
        return value
    if name == "float":
        _require(type(value) in (int, float))
        _bounded(kind, value)
        return float(value)
    if name == "bool":
        _require(type(value) is bool)
        return value
    if name == "any":
        return value
    if name == "literal":
        _require(any(type(value) is type(option) and value == option for option in kind["values"]))
        return value
    if name == "optional":
        return None if value is None else _checked(kind["of"], value)
    if name == "union":  # exact types only: the alternative pydantic's smart union picks
        for option in kind["of"]:
            try:
                return _checked(option, value)
            except _NotAccepted:
                continue
        raise _NotAccepted
    if name == "list":
        _require(type(value) is list)
        _bounded(kind, value)
        return [_checked(kind["of"], item) for item in value]
    if name == "dict":
        _require(type(value) is dict)
        _bounded(kind, value)
        return {_checked(kind["keys"], key): _checked(kind["values"], item) for key, item in value.items()}
    if name == "tagged":
        _require(type(value) is dict and type(value.get(kind["tag"])) is str and value[kind["tag"]] in kind["choices"])
        return _model(kind["choices"][value[kind["tag"]]], value)
    if name == "model":
        return _model(kind["name"], value)
    raise _NotAccepted


def _model(name: str, value: Any) -> View:
    model = _table()["models"][name]
    _require(type(value) is dict and set(value) <= set(model["fields"]))
    fields = {}
    for field, entry in model["fields"].items():
        if field in value:
            fields[field] = _checked(entry["type"], value[field])
        else:
            _require("default" in entry)
            # pydantic does not validate defaults: they are held as written in the model
            fields[field] = _as_view(entry["type"], copy.deepcopy(entry["default"]))
    for rule in model["rules"]:
        _require(_rule_holds(name, rule, fields))
    return View(**fields)


def _as_view(kind: dict[str, Any], value: Any) -> Any:
    """A default as the model holds it: models (default factories) as views, unchecked."""
    name = kind["kind"]
    if value is None or name in ("str", "int", "float", "bool", "any", "literal", "union"):
        return value
    if name == "optional":
        return _as_view(kind["of"], value)
    if name == "list":
        return [_as_view(kind["of"], item) for item in value]
    if name == "dict":
        return {key: _as_view(kind["values"], item) for key, item in value.items()}
    if name == "model":
        fields = _table()["models"][kind["name"]]["fields"]
        return View(**{field: _as_view(fields[field]["type"], item) for field, item in value.items()})
    raise _NotAccepted


def _finite(value: Any) -> bool:
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is dict:
        return all(_finite(item) for item in value.values())
    if type(value) is list:
        return all(_finite(item) for item in value)
    return True


def view_of(data: Any) -> View | None:
    """The spec as the models would hold it, or None when the full path must decide."""
    try:
        _require(_finite(data))
        return _model(_table()["root"], data)
    except Exception:  # _NotAccepted, or anything unforeseen: the full path decides
        return None


def validate_alone(spec: str) -> list[Diagnostic] | None:
    """The warnings of a spec that is valid checked on its own (as `load_system` checks it
    without profiles), or None when the full path must run: there are profiles, or the
    spec has an error, or this path does not accept it."""
    if (Path(spec).parent / "targets").is_dir():  # profiles beside the spec (resolve.discover_profiles)
        return None
    try:
        document = load_yaml_file(spec, display_path(spec))
    except SpecError:
        return None
    if kind_problem(document, "MLSystem"):
        return None
    diagnostics = check_literal_secrets(document.data, document.source_map)
    diagnostics += check_characters(document.data, document.source_map)
    if errors_in(diagnostics):
        return None
    system = view_of(document.data)
    if system is None:
        return None
    diagnostics += check_system(system, document.source_map, profile_names=None, estimator_packages=[])  # type: ignore[arg-type]
    if errors_in(diagnostics):
        return None
    return [d for d in diagnostics if d.severity == "warning"]


def validate_specs_alone(specs: Sequence[str]) -> tuple[list[Diagnostic], list[str]] | None:
    """`mlcompile validate SPEC...` without --target when every spec is valid on its own:
    the warnings and the lines it prints. None as soon as one spec needs the full path, which
    then reports every spec as before."""
    diagnostics = []
    for spec in specs:
        warnings = validate_alone(spec)
        if warnings is None:
            return None
        diagnostics += warnings
    return diagnostics, [f"{spec}: valid{NO_PROFILES}" for spec in specs]
