"""JSON and YAML files compared as data, not as lines: each change is a key path and its old
and new value (`$.spec.predictor.canaryTrafficPercent: 10 → 25`). A string holding JSON (a
pipeline definition embedded in a request body, a config passed as one argument) is compared
inside, so a one-word change never shows as a several-kilobyte line. Source locations (the
line a resource was written on) are provenance, not changes.

Lists of named things (tags, containers, variants, steps) are matched by their name, not by
their position, so that one entry added does not show every later entry as changed."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Literal

# keys that name an element of a list, in the order they are tried
_IDENTITY_KEYS = ("name", "Name", "key", "Key", "id", "Id", "VariantName", "StepName", "MetricName", "type", "kind")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_MISSING = object()
_SOURCE_LOCATION = {"file", "line", "col", "path"}


@dataclass(frozen=True)
class KeyChange:
    """One value that differs: `old` is None for an added key, `new` None for a removed one
    (`added`/`removed` say which, as null is also a value)."""

    path: str
    old: Any
    new: Any
    change: Literal["added", "removed", "changed"] = "changed"

    def render(self) -> str:
        if self.change != "changed":
            return f"{self.path}: {show(self.old) if self.change == 'removed' else '(none)'} → {show(self.new) if self.change == 'added' else '(none)'}"
        old, new = _encoded(self.old), _encoded(self.new)
        # two long values cut at the same place would read the same: both are shown from a
        # little before the first character where they differ
        start = max(0, len(os.path.commonprefix([old, new])) - _CONTEXT) if len(old) > _LIMIT and len(new) > _LIMIT else 0
        return f"{self.path}: {_window(old, start)} → {_window(new, start)}"


_LIMIT = 160  # characters of one value on a change's line
_CONTEXT = 40  # characters kept before the first difference of two long values


def _encoded(value: Any) -> str:
    return json.dumps(value, sort_keys=not isinstance(value, str), ensure_ascii=False)


def _window(text: str, start: int) -> str:
    cut = text[start : start + _LIMIT - (1 if start else 0)]
    return ("…" if start else "") + (cut if start + len(cut) >= len(text) else cut[:-1] + "…")


def show(value: Any, limit: int = _LIMIT) -> str:
    text = _encoded(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse(path: str, content: bytes) -> Any:
    """The data of a JSON or YAML file, or _MISSING when it is neither (or does not parse)."""
    lowered = path.lower()
    try:
        text = content.decode("utf-8")
        if lowered.endswith(".json"):
            return json.loads(text)
        if lowered.endswith((".yaml", ".yml")):
            import yaml

            documents = list(yaml.safe_load_all(text))
            return documents[0] if len(documents) == 1 else documents
    except Exception:  # noqa: BLE001 — a file that does not parse (or decode) is compared as text
        return _MISSING
    return _MISSING


def compare_files(path: str, old: bytes, new: bytes) -> list[KeyChange] | None:
    """The key-path changes between two versions of a JSON/YAML file, or None when either
    is not structured data (compare its lines instead)."""
    before, after = parse(path, old), parse(path, new)
    if before is _MISSING or after is _MISSING:
        return None
    changes: list[KeyChange] = []
    _compare(_expand(before), _expand(after), "$", changes)
    return changes


def _expand(value: Any) -> Any:
    """JSON held in strings, decoded (recursively), so that it compares as data."""
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str) and len(value) > 1 and value[0] in "[{" and value[-1] in "]}":
        try:
            return _Embedded(_expand(json.loads(value)))
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class _Embedded:
    """A value that was a JSON string: its key paths continue through `(json)`."""

    data: Any


def _key(path: str, key: Any) -> str:
    key = str(key)
    return f"{path}.{key}" if _PLAIN_KEY.match(key) else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _plain(value: Any) -> Any:
    if isinstance(value, _Embedded):
        return _plain(value.data)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_source_location(value: Any) -> bool:
    """A plan's `origin`: where in the spec a resource was written. Like the spec's hash it is
    provenance, and it moves with every line added above it."""
    return isinstance(value, dict) and set(value) == _SOURCE_LOCATION


def _compare(old: Any, new: Any, path: str, out: list[KeyChange]) -> None:
    if _is_source_location(old) and _is_source_location(new):
        return
    if isinstance(old, _Embedded) and isinstance(new, _Embedded):
        _compare(old.data, new.data, f"{path}(json)", out)
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            if key not in new:
                out.append(KeyChange(_key(path, key), _plain(old[key]), None, "removed"))
            elif key not in old:
                out.append(KeyChange(_key(path, key), None, _plain(new[key]), "added"))
            else:
                _compare(old[key], new[key], _key(path, key), out)
    elif isinstance(old, list) and isinstance(new, list):
        _compare_lists(old, new, path, out)
    elif _plain(old) != _plain(new) or type(old) is not type(new):
        out.append(KeyChange(path, _plain(old), _plain(new)))


def _identity(items: list[Any]) -> str | None:
    """The key that names every element of a list uniquely, if there is one."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in _IDENTITY_KEYS:
        names = [item.get(key) for item in items]
        if all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names) and len(set(names)) == len(names):
            return key
    return None


def _compare_lists(old: list[Any], new: list[Any], path: str, out: list[KeyChange]) -> None:
    key = _identity(old)
    if key is not None and key == _identity(new):
        before = {item[key]: item for item in old}
        after = {item[key]: item for item in new}
        for name in list(before) + [n for n in after if n not in before]:
            where = f"{path}[{key}={name}]"
            if name not in after:
                out.append(KeyChange(where, _plain(before[name]), None, "removed"))
            elif name not in before:
                out.append(KeyChange(where, None, _plain(after[name]), "added"))
            else:
                _compare(before[name], after[name], where, out)
        return
    if len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            _compare(a, b, f"{path}[{index}]", out)
        return
    import difflib

    encoded_old = [json.dumps(_plain(v), sort_keys=True) for v in old]
    encoded_new = [json.dumps(_plain(v), sort_keys=True) for v in new]
    matcher = difflib.SequenceMatcher(a=encoded_old, b=encoded_new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            for offset in range(i2 - i1):
                _compare(old[i1 + offset], new[j1 + offset], f"{path}[{j1 + offset}]", out)
            continue
        out += [KeyChange(f"{path}[{i}]", _plain(old[i]), None, "removed") for i in range(i1, i2)]
        out += [KeyChange(f"{path}[{j}]", None, _plain(new[j]), "added") for j in range(j1, j2)]
