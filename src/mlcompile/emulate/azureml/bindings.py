"""The expressions of an Azure ML pipeline job, as the service resolves them before a step
starts: `${{parent.jobs.X.outputs.Y}}` and `${{parent.inputs|outputs.Z}}` bindings between a
node and its pipeline (they make the jobs graph), and a component command's
`${{inputs.x}}` / `${{outputs.x}}` placeholders, with `$[[ … ]]` blocks that vanish when an
optional input they name is not given.

Azure ML substitutes in the command line text itself (the command then runs under bash):
a data input becomes the local path it is mounted at, a literal input its value as text, an
output the local path the step writes to (a folder for uri_folder, a file's path for
uri_file). A placeholder that names no declared input or output fails the job before it
starts, as the service's validation does."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

BINDING = re.compile(r"^\$\{\{\s*parent\.(?:jobs\.(?P<job>[\w-]+)\.outputs\.(?P<output>[\w-]+)|(?P<side>inputs|outputs)\.(?P<name>[\w-]+))\s*\}\}$")
PLACEHOLDER = re.compile(r"\$\{\{\s*(?P<side>inputs|outputs)\.(?P<name>[\w-]+)\s*\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(?P<body>.*?)\]\]", re.DOTALL)
DATA_TYPES = frozenset({"uri_folder", "uri_file", "mltable", "mlflow_model", "custom_model", "triton_model"})


class BindingError(ValueError):
    """A job whose expressions the service would refuse (the job fails before it starts)."""


def binding(value: Any) -> dict[str, str] | None:
    """What a node's input or output value binds to: {"job", "output"} (a sibling's output),
    {"side", "name"} (the pipeline's own input or output), or None for a literal value."""
    if isinstance(value, Mapping):
        value = value.get("path", value.get("value"))
    if not isinstance(value, str):
        return None
    match = BINDING.match(value.strip())
    if match is None:
        if "${{" in value:
            raise BindingError(f"{value!r} is not a binding Azure ML resolves (${{{{parent.jobs.<job>.outputs.<name>}}}} or ${{{{parent.inputs.<name>}}}})")
        return None
    return {k: v for k, v in match.groupdict().items() if v is not None}


def upstream(node: Mapping[str, Any]) -> set[str]:
    """The jobs whose outputs a node reads: its edges in the pipeline's jobs graph."""
    found = set()
    for value in (node.get("inputs") or {}).values():
        bound = binding(value)
        if bound and "job" in bound:
            found.add(bound["job"])
    return found


def literal(value: Any) -> str:
    """A literal input as Azure ML writes it into the command (Python's str of the value)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def substitute(command: str, inputs: Mapping[str, str], outputs: Mapping[str, str], declared: Mapping[str, Any]) -> str:
    """The command line a step runs: `inputs` / `outputs` map names to the text each
    placeholder becomes (paths, literal values); `declared` is the component's `inputs` and
    `outputs` sections (what the command may name). An optional block whose inputs are all
    given keeps its body (substituted); one naming an input not given disappears."""
    declared_inputs = declared.get("inputs") or {}
    declared_outputs = declared.get("outputs") or {}

    def check(side: str, name: str) -> None:
        if name not in (declared_inputs if side == "inputs" else declared_outputs):
            raise BindingError(f"the command names ${{{{{side}.{name}}}}}, which the component does not declare")

    def one(match: re.Match[str]) -> str:
        side, name = match.group("side", "name")
        check(side, name)
        given = inputs if side == "inputs" else outputs
        if name not in given:
            raise BindingError(f"${{{{{side}.{name}}}}} has no value: a required {side[:-1]} was not given (optional ones belong in $[[ … ]])")
        return given[name]

    def block(match: re.Match[str]) -> str:
        body = match.group("body")
        named = [m.group("side", "name") for m in PLACEHOLDER.finditer(body)]
        for side, name in named:
            check(side, name)
        if all(name in (inputs if side == "inputs" else outputs) for side, name in named):
            return PLACEHOLDER.sub(one, body)
        return ""

    without_optional = OPTIONAL_BLOCK.sub(block, command)
    return PLACEHOLDER.sub(one, without_optional)
