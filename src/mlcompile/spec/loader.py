"""YAML → plain data plus a source map (json path → line:col).

Everything that can go wrong while reading a file is a diagnostic, never an exception that
escapes: a missing or oversized file, bytes that are not UTF-8, YAML syntax errors, duplicate
keys, tags that would construct objects, documents nested or aliased beyond reason, empty
files and documents that are not a mapping.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mlcompile.diagnostics import Diagnostic, JsonPath, format_json_path, shorten
from mlcompile.errors import SpecError

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 100_000
# keys and values: a document within MAX_VALUES never has more nodes, so this limit refuses
# nothing that the value limit would accept
MAX_NODES = 2 * MAX_VALUES + 1
# libyaml composes a document of up to this many tokens (≤ 2 nodes a token: ~100 MiB at
# worst) on its own; a 5,000-feature spec has ~105,000
MAX_FAST_TOKENS = 150_000

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}
_MERGE_TAG = f"{_TAG}merge"


@dataclass
class SourceMap:
    """Where each json path of a document starts; keys and values are kept apart so that an
    unknown key is pointed at the key, and a bad value at the value."""

    file: str
    keys: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """The best position for a path: itself, else its nearest ancestor that exists."""
        probe = tuple(path)
        while True:
            table = (self.keys, self.values) if key else (self.values, self.keys)
            for positions in table:
                if probe in positions:
                    return positions[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def diagnostic(
        self,
        path: JsonPath,
        message: str,
        *,
        hint: str | None = None,
        key: bool = False,
        severity: str = "error",
        shown_path: JsonPath | None = None,
    ) -> Diagnostic:
        line, col = self.locate(path, key=key)
        return Diagnostic(
            file=self.file,
            line=line,
            col=col,
            severity=severity,  # type: ignore[arg-type]
            path=format_json_path(path if shown_path is None else shown_path),
            message=message,
            hint=hint,
        )


@dataclass
class Document:
    """One loaded YAML file: its data, where each value came from, and its content hash."""

    file: str
    data: dict[str, Any]
    source_map: SourceMap
    sha256: str


class _ComposeLimits:
    """compose_node with a nesting limit and a node limit, so that a deeply nested document
    is a diagnostic rather than a RecursionError, and a file of millions of tiny values is
    stopped before its nodes fill memory (a node costs ~300 bytes)."""

    depth = 0
    nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _LoadProblem(
                    mark.line + 1,
                    mark.column + 1,
                    f"document is nested more than {MAX_DEPTH} levels deep",
                    "a spec is a few levels deep; check for a runaway [ or {",
                )
            if self.nodes > MAX_NODES:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _LoadProblem(mark.line + 1, mark.column + 1, f"document has more than {MAX_VALUES} values", "a spec has a few thousand at most")
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self.depth -= 1


class _BoundedLoader(_ComposeLimits, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, with the limits."""


class _BoundedEventLoader(_ComposeLimits, Composer, yaml.CSafeLoader):  # type: ignore[misc]
    """PyYAML's Python composer, with the limits, over libyaml's scanner and parser: for
    documents too large for libyaml's own composer, which has no limit on nodes."""

    def __init__(self, stream: str):
        yaml.CSafeLoader.__init__(self, stream)
        Composer.__init__(self)


class _LoadProblem(Exception):
    def __init__(self, line: int, col: int, message: str, hint: str | None = None, path: JsonPath = ()):
        super().__init__(message)
        self.line, self.col, self.message, self.hint, self.path = line, col, message, hint, path


def _position_of_offset(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Builder:
    """Turns a composed node graph into plain data while recording positions. Aliases are
    expanded here, so expansion is where alias bombs and recursive aliases are stopped."""

    def __init__(self, source_map: SourceMap):
        self.source_map = source_map
        self.constructor = SafeConstructor()
        self.values = 0
        self.active: set[int] = set()
        self.problems: list[_LoadProblem] = []

    def build(self, node: Node, path: JsonPath) -> Any:
        if len(path) >= MAX_DEPTH:  # the root is level 1, as in _BoundedLoader.compose_node
            raise _LoadProblem(
                *_start(node),
                f"document is nested more than {MAX_DEPTH} levels deep",
                "a spec is a few levels deep; check for a runaway [ or {",
                path[:1],
            )
        self.values += 1
        if self.values > MAX_VALUES:
            raise _LoadProblem(  # at the top-level key named: the node here is deep inside an anchor
                *self.source_map.keys.get(path[:1], _start(node)),
                f"document expands to more than {MAX_VALUES} values",
                "YAML aliases (*name) that repeat large anchors multiply the document; write the values out",
                path[:1],
            )
        if id(node) in self.active:
            raise _LoadProblem(*_start(node), "recursive YAML alias", "an anchor cannot contain an alias to itself", path)
        self.source_map.values.setdefault(path, _start(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != f"{_TAG}seq":
                    raise _unsupported_tag(node, path)
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                if node.tag != f"{_TAG}map":
                    raise _unsupported_tag(node, path)
                return self._mapping(node, path)
        finally:
            self.active.discard(id(node))
        raise _unsupported_tag(node, path)

    def _scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        if node.tag not in _SCALAR_TAGS:
            raise _unsupported_tag(node, path)
        if node.tag == f"{_TAG}timestamp":
            return node.value  # dates stay text: JSON has no date type and specs never need one
        if node.tag == f"{_TAG}str":
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            shown = repr(node.value) if len(node.value) <= 40 else repr(node.value[:37] + "...")  # a 1,000,000-digit number
            raise _LoadProblem(*_start(node), f"cannot read scalar {shown}: {exc}", path=path) from None

    def _mapping(self, node: MappingNode, path: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)  # built after the explicit keys, whose positions win
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                raise _LoadProblem(*_start(key_node), "mapping keys must be plain strings", path=path)
            key = key_node.value  # the key as written: `yes:` stays 'yes', and `0x_:` cannot fail to construct
            child = (*path, key)
            if key in seen:
                line, col = seen[key]
                self.problems.append(
                    _LoadProblem(
                        *_start(key_node),
                        f"duplicate key '{shorten(key)}' (first defined at line {line}, column {col})",
                        "YAML keeps only the last value of a repeated key; remove one of them",
                        child,
                    )
                )
                continue
            seen[key] = _start(key_node)
            self.source_map.keys.setdefault(child, _start(key_node))
            result[key] = self.build(value_node, child)
        merged: dict[str, Any] = {}
        for value_node in merges:
            merged.update(self._merge_sources(value_node, path))
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node: Node, path: JsonPath) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                raise _LoadProblem(*_start(source), "'<<' merges only mappings", path=path)
            merged.update(self.build(source, path))
        return merged


def _start(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _unsupported_tag(node: Node, path: JsonPath) -> _LoadProblem:
    tag = "!!" + node.tag.removeprefix(_TAG) if node.tag.startswith(_TAG) else node.tag  # as the user wrote it
    return _LoadProblem(
        *_start(node),
        f"unsupported YAML tag '{tag}'",
        "specs are plain data: mappings, lists, strings, numbers, booleans and null",
        path,
    )


def _problem_diagnostic(file: str, problem: _LoadProblem) -> Diagnostic:
    shown = format_json_path(problem.path) if problem.path else ""
    return Diagnostic(file, problem.line, problem.col, "error", shown, problem.message, problem.hint)


# Fixes for the syntax errors people make most, keyed by a phrase of libyaml's or PyYAML's message.
_SYNTAX_HINTS = (
    ("mapping values are not allowed", "check the indentation of this line; a value that contains ': ' needs quotes"),
    ("expected key", "check the indentation: the keys of one mapping must line up"),
    ("expected <block end>", "check the indentation: the keys of one mapping must line up"),
    ("'-' indicator", "check the indentation: the items of one list must line up"),
    ("could not find expected ':'", "a key needs ': ' after it; quote a value that spans lines"),
    ("',' or ']'", "a [ list is not closed, or its items need commas"),
    ("',' or '}'", "a { mapping is not closed, or its entries need commas"),
    ("end of stream", "a quote or bracket is not closed"),
)


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str, str | None]:
    """(line, col, message, hint) of a YAML syntax error: where the parser stopped, and
    where the construct it was reading began when that is elsewhere (an unclosed [ …)."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = exc.problem or exc.context or "invalid YAML"
    start = exc.context_mark
    if exc.problem and exc.context and start is not None and (start.line + 1, start.column + 1) != (line, col):
        message += f" ({exc.context} that starts at line {start.line + 1}, column {start.column + 1})"
    hint = next((fix for phrase, fix in _SYNTAX_HINTS if phrase in message), None)
    lines = text.split("\n")
    if line <= len(lines) and "\t" in lines[line - 1][: col]:
        hint = "indent with spaces: YAML does not allow tabs"
    return line, col, message, hint


def _fail(file: str, line: int, col: int, message: str, hint: str | None = None) -> SpecError:
    return SpecError([Diagnostic(file, line, col, "error", "", message, hint)])


# libyaml composes ~10x faster than PyYAML's Python composer. Its C composer recurses, but
# PyYAML >= 6.0.4 (a dependency pin) bundles a libyaml that stops at 1,000 levels of nesting
# with a message of its own; load_yaml_text then hands the document to the Python composer,
# which stops at MAX_DEPTH with the located diagnostic. Without libyaml, the Python composer.
# Nor does the C composer limit the number of nodes: a 5 MiB file of `- 1` lines took 840 MiB
# and 13 s. libyaml's scanner counts the tokens first without building anything (~10 ms for
# a 5,000-feature spec, 0.2 s for 5 MiB); past MAX_FAST_TOKENS the Python composer reads
# libyaml's events and stops at MAX_NODES.


def _loader_for(text: str) -> yaml.SafeLoader:
    if getattr(yaml, "__with_libyaml__", False):
        scanner = yaml.CSafeLoader(text)
        try:
            tokens = scanner.raw_scan()
        finally:
            scanner.dispose()
        if tokens <= MAX_FAST_TOKENS:
            return yaml.CSafeLoader(text)  # type: ignore[return-value]
        return _BoundedEventLoader(text)  # type: ignore[return-value]
    return _BoundedLoader(text)


def load_yaml_file(path: str | os.PathLike[str], display: str | None = None) -> Document:
    """Read one spec or profile file; raises SpecError with located diagnostics."""
    file = display if display is not None else str(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            raise _fail(file, 1, 1, f"file is {size / 1048576:.1f} MiB; specs are limited to {MAX_FILE_BYTES // 1048576} MiB")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except SpecError:
        raise
    except IsADirectoryError:
        raise _fail(file, 1, 1, "is a directory, not a YAML file") from None
    except FileNotFoundError:
        raise _fail(file, 1, 1, "no such file") from None
    except OSError as exc:
        raise _fail(file, 1, 1, f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _fail(file, 1, 1, f"file grew past {MAX_FILE_BYTES // 1048576} MiB while being read")
    return load_yaml_bytes(raw, file)


def load_yaml_bytes(raw: bytes, file: str) -> Document:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(
            file, line, col, f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x})", "save the file as UTF-8"
        ) from None
    return load_yaml_text(text, file, sha256=hashlib.sha256(raw).hexdigest())


def load_yaml_text(text: str, file: str, *, sha256: str | None = None, python_composer: bool = False) -> Document:
    digest = sha256 or hashlib.sha256(text.encode()).hexdigest()
    source_map = SourceMap(file)
    loader = None
    try:
        loader = _BoundedLoader(text) if python_composer else _loader_for(text)
        root = loader.get_single_node()
        if root is None:
            raise _LoadProblem(1, 1, "file is empty", "start from `mlcompile init`, or see docs/spec.md")
        builder = _Builder(source_map)
        data = builder.build(root, ())
        if builder.problems:
            raise SpecError(_problem_diagnostic(file, p) for p in builder.problems)
    except _LoadProblem as problem:
        raise SpecError([_problem_diagnostic(file, problem)]) from None
    except yaml.MarkedYAMLError as exc:
        if not python_composer and "nesting depth" in str(exc.problem):
            # libyaml's own depth limit: let the Python composer report it as ours
            return load_yaml_text(text, file, sha256=digest, python_composer=True)
        line, col, message, hint = _syntax_problem(exc, text)
        raise _fail(file, line, col, f"invalid YAML: {message}", hint) from None
    except yaml.reader.ReaderError as exc:
        line, col = _position_of_offset(text, exc.position)
        raise _fail(file, line, col, f"invalid YAML: control character U+{exc.character:04X} is not allowed", "is this a binary file?") from None
    except yaml.YAMLError as exc:
        raise _fail(file, 1, 1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _fail(file, 1, 1, "document is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        raise _fail(file, 1, 1, "file is empty", "start from `mlcompile init`, or see docs/spec.md")
    if not isinstance(data, dict):
        kinds = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false"}
        kind = kinds.get(type(data), f"a {type(data).__name__}")
        raise _fail(file, 1, 1, f"the top level must be a mapping of keys to values, not {kind}")
    return Document(file=file, data=data, source_map=source_map, sha256=digest)
