"""The one way mlcompile writes YAML: every generated YAML file (targets' manifests, the Feast
repository's feature_store.yaml, `init`'s spec) goes through `dump` or, in a template,
through `scalar` (the `yaml` filter), so that a value reads back as exactly what was written.

PyYAML quotes only the strings that *it* would read as something else. Other readers differ:
YAML 1.2 readers (Go's yaml.v3, ruamel) take `1e3` and `0o17` for numbers, YAML 1.1 readers
`off` and `y` for booleans. A string any of them could take for a null, a boolean, a number
or a date is quoted here; control characters are always written as escapes, never raw."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

from mlcompile.diagnostics import is_unsafe_character

# libyaml's emitter when present: same bytes, faster on large specs
_Base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# A plain scalar some YAML 1.1 or 1.2 reader resolves to a non-string: nulls, booleans (1.1's
# y/n/on/off included), numbers in any base or notation (1.1's `1_000` and sexagesimal
# `12:30`, 1.2's `1e3` and `0o17`), dates, the merge key, and the empty string.
_NOT_A_STRING = re.compile(
    r"~|null|Null|NULL|"
    r"[yY]|[yY]es|YES|[nN]|[nN]o|NO|[tT]rue|TRUE|[fF]alse|FALSE|[oO]n|ON|[oO]ff|OFF|"
    r"[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|0o[0-7_]+|[0-9][0-9_]*(:[0-5]?[0-9])*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|\.[0-9][0-9_]*([eE][-+]?[0-9]+)?)|"
    r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt \t].*)?|<<|=|"
)
# A plain scalar that needs no quotes in any context (block or flow, key or value)
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@-]*")


def _needs_quotes(text: str) -> bool:
    return bool(_NOT_A_STRING.fullmatch(text))


class SafeDumper(_Base):
    """Sorted keys are the caller's choice; no anchors or aliases (humans and Kubernetes
    tooling read these files); multi-line strings as literal blocks (readable commands)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: SafeDumper, data: str) -> yaml.ScalarNode:
    style = None
    if _needs_quotes(data):
        style = "'"
    elif "\n" in data and not any(c != "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0) for c in data):
        style = "|"  # the emitter still falls back to double quotes where a block cannot hold it
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


SafeDumper.add_representer(str, _represent_str)


def dump(data: Any, *, sort_keys: bool = True, width: int = 1 << 16) -> str:
    """Deterministic block-style YAML of plain data (dicts, lists, str, numbers, bools, None)."""
    text: str = yaml.dump(data, Dumper=SafeDumper, sort_keys=sort_keys, default_flow_style=False, allow_unicode=True, width=width)
    return text


def scalar(value: Any) -> str:
    """One value as an inline YAML scalar, for a template (`{{ value | yaml }}`): plain when
    it cannot be misread, otherwise a double-quoted string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else (".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf"))
    text = str(value)
    if _PLAIN.fullmatch(text) and not _needs_quotes(text):
        return text
    return _double_quoted(text)


def _double_quoted(text: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes for quotes, backslashes and controls, and
    an escape for every character a terminal or reader could stumble on (YAML readers refuse
    JSON's surrogate pairs, so characters beyond U+FFFF are written as `\\UXXXXXXXX`)."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\' or code < 0x20:
            out.append(json.dumps(char)[1:-1])
        elif is_unsafe_character(char) or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
