"""The diff report as text (terminals, CI logs), Markdown (a pull-request comment) and JSON
(stable; `schemas/diff-v1.schema.json`)."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from mlcompile.cost import CAVEAT
from mlcompile.diff.engine import DiffReport, FileChange, ProfileDiff
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


# GitHub refuses a comment over 65,536 characters: stay well below, with room for a CI job's own lines.
COMMENT_LIMIT = 60_000
TEXT_LINES_PER_FILE = 60  # key-path changes or diff lines of one file in text or a comment (the artifact has them all)
MARKDOWN_LINES_PER_FILE = 30
FIELDS_PER_RESOURCE = 8  # changed fields named on one resource's line of a comment
ONE_SCREEN = 12  # profiles listed by name when nothing changed; more are counted


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _label(profile: ProfileDiff, several: bool) -> str:
    return f"{profile.system}/{profile.profile}" if several and profile.system else profile.profile


def _several_systems(report: DiffReport) -> bool:
    return len({p.system for p in report.profiles}) > 1


def _compared(report: DiffReport) -> str:
    systems = len({p.system for p in report.profiles})
    return f"{_plural(len(report.profiles), 'profile')} of {_plural(systems, 'system')}"


def _summary_line(profile: ProfileDiff, several: bool = False) -> str:
    name = f"{_label(profile, several)} ({profile.platform})"
    if not profile.changed:
        return f"{name}: no changes"
    counts = f"{_plural(len(profile.resources), 'resource')}, {_plural(len(profile.files), 'file')}"
    return f"{name}: {counts} changed — {', '.join(profile.impacts)}"


def _file_lines(change: FileChange) -> list[str]:
    """What changed in one file: its key paths (JSON/YAML) or its unified diff."""
    if change.changes:
        return [c.render() for c in change.changes]
    return change.unified.rstrip("\n").split("\n") if change.unified else []


def _cut(lines: list[str], limit: int | None, more: str) -> list[str]:
    if limit is None or len(lines) <= limit:
        return lines
    return [*lines[:limit], f"… {len(lines) - limit} more {more}"]


def _file_title(change: FileChange) -> str:
    moved = f" (renamed from {change.renamed_from})" if change.renamed_from else ""
    return f"{change.path}: {change.change}{moved}"


def to_text(report: DiffReport, *, full: bool = False, artifact: str | None = None) -> str:
    """For terminals and CI logs; `full` (the artifact file) cuts nothing."""
    several = _several_systems(report)
    if not report.changed:
        return _unchanged_text(report, several)
    changed = [p for p in report.profiles if p.changed]
    lines = [f"mlcompile diff against {report.base}: {len(changed)} of {_compared(report)} changed"]
    limit = None if full else TEXT_LINES_PER_FILE
    cut = False
    for profile in changed:
        lines += ["", _summary_line(profile, several)]
        lines += [f"  {resource.render()}" for resource in profile.resources]
        if profile.costs:
            lines.append("  cost (estimates from list prices, not a quote):")
            lines += [f"    {change.render()}" for change in profile.costs]
        for change in profile.files:
            lines.append(f"  file {_file_title(change)}")
            found = _file_lines(change)
            cut |= limit is not None and len(found) > limit
            lines += [f"    {line}" if line else "" for line in _cut(found, limit, "lines")]
    unchanged = [p for p in report.profiles if not p.changed]
    if unchanged:
        lines += ["", f"unchanged: {_names(unchanged, several)}"]
    if cut:
        lines += [
            "",
            f"long file changes were cut; the full diff is in {artifact}" if artifact else "long file changes were cut; --artifact FILE writes the full diff",
        ]
    return "\n".join(lines) + "\n"


def _names(profiles: list[ProfileDiff], several: bool) -> str:
    if len(profiles) > ONE_SCREEN:
        return f"{_plural(len(profiles), 'profile')} of {_plural(len({p.system for p in profiles}), 'system')}"
    return ", ".join(_label(p, several) for p in profiles)


def _unchanged_text(report: DiffReport, several: bool) -> str:
    """One screen, however many systems: nothing to review."""
    lines = [f"mlcompile diff against {report.base}: No changes ({_compared(report)} compared)"]
    if len(report.profiles) <= ONE_SCREEN:
        lines += [f"  {_summary_line(p, several)}" for p in report.profiles]
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


def _code(text: str) -> str:
    """`text` as an inline code span (safe for any characters but newlines)."""
    text = text.replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(lines: list[str], language: str = "") -> list[str]:
    fence = "```" if not any(line.lstrip().startswith("```") for line in lines) else "~~~~"
    return [f"{fence}{language}", *lines, fence]


def _resource_lines(profile: ProfileDiff) -> list[str]:
    """One line per resource, naming the change in words: `canary 10% → 25%`."""
    lines = []
    for resource in profile.resources:
        fields = [f.render() for f in resource.fields[:FIELDS_PER_RESOURCE]]
        if len(resource.fields) > FIELDS_PER_RESOURCE:
            fields.append(f"… {len(resource.fields) - FIELDS_PER_RESOURCE} more")
        what = resource.change if resource.change != "changed" else ", ".join(fields)
        lines.append(f"- **{resource.resource}**: {_code(_shorten(what))}")
    return lines


def _shorten(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cost_block(profile: ProfileDiff) -> list[str]:
    if not profile.costs:
        return []
    return ["", "**Cost** (estimates):", "", *(f"- {c.render('**')}" for c in profile.costs), "", f"<sub>{CAVEAT}</sub>"]


def _files_block(profile: ProfileDiff, label: str, plan: Plan | None) -> list[str]:
    """A profile's file changes (and its DAG), folded: the comment opens on the summary."""
    lines = ["", f"<details><summary><code>{label}</code> ({profile.platform}): {_plural(len(profile.files), 'file')} changed</summary>", ""]
    if plan is not None and profile.changed_steps:
        lines += ["training DAG (changed steps highlighted):", "", _mermaid(plan, profile.changed_steps), ""]
    for change in profile.files:
        lines.append(
            f"- {_code(change.path)} ({change.kind or 'file'}): {change.change}"
            + (f", renamed from {_code(change.renamed_from)}" if change.renamed_from else "")
        )
        found = _file_lines(change)
        if found:
            lines += ["", *_fenced(_cut(found, MARKDOWN_LINES_PER_FILE, "lines (in the full diff)"), "" if change.changes else "diff"), ""]
    return [*lines, "", "</details>"]


def to_markdown(report: DiffReport, plans: dict[str, Plan] | None = None, *, artifact: str | None = None, limit: int = COMMENT_LIMIT) -> str:
    """A pull-request comment under `limit` characters: the summary table and the resource
    changes first, then each profile's files folded in `<details>`; what does not fit is
    named, and is in the full diff (`--artifact`)."""
    plans = plans or {}
    several = _several_systems(report)
    head = [MARKER, f"### mlcompile diff against `{report.base}`", ""]
    if not report.changed:
        listed = "" if len(report.profiles) > ONE_SCREEN else ": " + ", ".join(_code(_label(p, several)) for p in report.profiles)
        return "\n".join([*head, f"**No changes** in any build ({_compared(report)} compared{listed})."]) + "\n"
    changed = [p for p in report.profiles if p.changed]
    unchanged = len(report.profiles) - len(changed)
    head += [f"**{len(changed)} of {_compared(report)} changed**" + (f"; {unchanged} unchanged." if unchanged else "."), ""]
    head += ["| profile | platform | resources | files | impact |", "|---|---|---|---|---|"]
    footer_room = 600 + len(artifact or "")  # the note on what was left out
    budget = limit - footer_room
    out: list[str] = []
    size = 0
    left_out: list[str] = []

    def add(block: list[str], what: str) -> bool:
        nonlocal size
        cost = sum(len(line) + 1 for line in block)
        if size + cost > budget:
            left_out.append(what)
            return False
        out.extend(block)
        size += cost
        return True

    add(head, "the summary")
    rows = [f"| {_code(_label(p, several))} | {p.platform} | {len(p.resources)} | {len(p.files)} | {', '.join(p.impacts)} |" for p in changed]
    shown_rows = 0
    for row in rows:
        if size + len(row) + 1 > budget // 3:  # a table of hundreds of profiles: the changes matter more
            break
        add([row], "a summary row")
        shown_rows += 1
    if shown_rows < len(rows):
        add([f"| … | {len(rows) - shown_rows} more changed profiles | | | |"], "a summary row")
    for profile in changed:  # what a reviewer reads first: every resource change that fits
        label = _label(profile, several)
        add(["", f"#### {_code(label)} ({profile.platform})", "", *_resource_lines(profile), *_cost_block(profile)], f"the resource changes of {label}")
    for profile in changed:
        label = _label(profile, several)
        key = f"{profile.system}/{profile.profile}" if several else profile.profile
        if profile.files:
            add(_files_block(profile, label, plans.get(key)), f"the file changes of {label}")
    cut = any(len(_file_lines(f)) > MARKDOWN_LINES_PER_FILE for p in changed for f in p.files)
    if left_out or cut:
        where = f"the full diff is in {_code(artifact)}" if artifact else "`mlcompile diff --artifact FILE` writes the full diff"
        if left_out:
            more = f" and {_plural(len(left_out) - 1, 'more section')}" if len(left_out) > 1 else ""
            note = f"Left out to stay under {limit:,} characters: {left_out[0]}{more}; {where}."
        else:
            note = f"Long file changes are cut; {where}."
        out += ["", f"<sub>{note}</sub>"]
    return "\n".join(out) + "\n"
