"""The diff report as text (terminals, CI logs), Markdown (a pull-request comment) and JSON
(stable; `schemas/diff-v1.schema.json`)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from mlcompile.cost import CAVEAT
from mlcompile.diff.engine import DiffReport, ProfileDiff
from mlcompile.plan.nodes import Plan

MARKER = "<!-- mlcompile diff -->"  # lets a CI job find and update its own comment


@cache
def _adapter() -> TypeAdapter[DiffReport]:
    return TypeAdapter(DiffReport)


def to_data(report: DiffReport) -> dict[str, Any]:
    return _adapter().dump_python(report, mode="json")


def diff_schema() -> dict[str, Any]:
    schema = _adapter().json_schema()
    schema["title"] = "mlcompile diff report (mlcompile diff --format json)"
    return schema


def to_json(report: DiffReport) -> str:
    return json.dumps(to_data(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _summary_line(profile: ProfileDiff) -> str:
    if not profile.changed:
        return f"{profile.profile} ({profile.platform}): no changes"
    counts = f"{len(profile.resources)} resource{'s' if len(profile.resources) != 1 else ''}, {len(profile.files)} file{'s' if len(profile.files) != 1 else ''}"
    return f"{profile.profile} ({profile.platform}): {counts} changed — {', '.join(profile.impacts)}"


def to_text(report: DiffReport, *, unified: bool = True) -> str:
    lines = [f"mlcompile diff against {report.base}"]
    for profile in report.profiles:
        lines += ["", _summary_line(profile)]
        for resource in profile.resources:
            lines.append(f"  {resource.render()}")
        if profile.costs:
            lines.append("  cost (estimates from list prices, not a quote):")
            lines += [f"    {change.render()}" for change in profile.costs]
        for change in profile.files:
            lines.append(f"  file {change.path}: {change.change}")
        if unified:
            for change in profile.files:
                if change.unified:
                    lines += ["", *("  " + line if line else "" for line in change.unified.rstrip("\n").split("\n"))]
    if not report.changed:
        lines += ["", "no changes"]
    return "\n".join(lines) + "\n"


def _mermaid(plan: Plan, changed: tuple[str, ...]) -> str:
    training = plan.training
    lines = ["```mermaid", "flowchart LR"]
    for step in training.steps:
        node = step.name.replace("-", "_")
        lines.append(f'  {node}["{step.name}"]')
        for upstream in step.depends_on:
            lines.append(f"  {upstream.replace('-', '_')} --> {node}")
    marked = [s.name.replace("-", "_") for s in training.steps if f"{training.name}/{s.name}" in changed]
    if marked:
        lines.append("  classDef changed fill:#fde68a,stroke:#b45309,stroke-width:2px")
        lines.append(f"  class {','.join(marked)} changed")
    lines.append("```")
    return "\n".join(lines)


def to_markdown(report: DiffReport, plans: dict[str, Plan] | None = None) -> str:
    plans = plans or {}
    lines = [MARKER, f"### mlcompile diff against `{report.base}`", ""]
    lines += ["| profile | platform | resources | files | impact |", "|---|---|---|---|---|"]
    for p in report.profiles:
        impact = ", ".join(p.impacts) if p.changed else "no changes"
        lines.append(f"| `{p.profile}` | {p.platform} | {len(p.resources)} | {len(p.files)} | {impact} |")
    for p in report.profiles:
        if not p.changed:
            continue
        lines += ["", f"#### `{p.profile}` ({p.platform})", ""]
        for resource in p.resources:
            lines.append(f"- **{resource.resource}**: " + (resource.change if resource.change != "changed" else ", ".join(f"`{f.field}` {_md(f.old)} → {_md(f.new)}" for f in resource.fields)))
        if p.costs:
            lines += ["", "**Cost** (estimates):", ""]
            lines += [f"- {c.item}: {c.old or '(none)'} → {c.new or '(none)'}" + (f" (**{c.delta}**)" if c.delta else "") for c in p.costs]
            lines += ["", f"<sub>{CAVEAT}</sub>"]
        if p.profile in plans:
            lines += ["", "<details><summary>training DAG (changed steps highlighted)</summary>", "", _mermaid(plans[p.profile], p.changed_steps), "", "</details>"]
        for change in p.files:
            lines += ["", f"<details><summary><code>{change.path}</code> ({change.kind or 'file'}): {change.change}</summary>", "", "```diff", change.unified.rstrip("\n"), "```", "", "</details>"]
    if not report.changed:
        lines += ["", "No changes in any build."]
    return "\n".join(lines) + "\n"


def _md(value: Any) -> str:
    from mlcompile.diff.engine import _show

    return f"`{_show(value)}`"
