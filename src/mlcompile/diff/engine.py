"""The structural comparison of two builds: resources of the plan, then files."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlcompile.diff.lineage import LineageValues, pair_renamed, path_hashes, with_file_digests, without_lineage
from mlcompile.diff.structural import KeyChange, compare_files
from mlcompile.plan.nodes import Plan, Resources, Step

Change = Literal["added", "removed", "changed"]

RETRAINS = "retrains the model"
SERVING = "changes serving"
COST = "changes cost class"
SCHEDULE = "changes a schedule"
METADATA = "touches only metadata"
IMPACT_ORDER = (RETRAINS, SERVING, COST, SCHEDULE, METADATA)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def render(self) -> str:
        return f"{self.field} {_show(self.old)} → {_show(self.new)}"


@dataclass(frozen=True)
class ResourceChange:
    resource: str  # "step train", "endpoint churn", "schedule churn-retraining", …
    change: Change
    fields: tuple[FieldChange, ...]
    impacts: tuple[str, ...]

    def render(self) -> str:
        if self.change != "changed":
            return f"{self.resource}: {self.change}"
        return f"{self.resource}: " + ", ".join(f.render() for f in self.fields)


@dataclass(frozen=True)
class CostChange:
    """A change to a cost estimate (cost.json of each side): "pipeline NAME" (a run's upper
    bound), "endpoint NAME" (per month, min to max replicas) or "schedule NAME" (per month), the
    totals "total per training run" and "total per month", or "change per month" (the month's
    difference when neither side has a month total: no old or new, a delta only)."""

    item: str
    old: str | None  # the estimate in words; None where the item did not exist
    new: str | None
    delta: str | None = None  # new − old in dollars ("+$1,234.56 a run", "+$80.30/month"), or "price unknown"

    def render(self, emphasis: str = "") -> str:
        """One line; ``emphasis`` wraps the difference (``**`` in Markdown)."""
        delta = f"{emphasis}{self.delta}{emphasis}"
        if self.old is None and self.new is None:  # a difference only ("change per month")
            return f"{self.item}: {delta}"
        return f"{self.item}: {self.old or '(none)'} → {self.new or '(none)'}" + (f" ({delta})" if self.delta else "")


@dataclass(frozen=True)
class FileChange:
    """A file that differs once lineage is set aside. A JSON/YAML file that changed lists its
    key-path changes (`changes`) and has no line diff; other files have a unified diff."""

    path: str
    kind: str
    change: Change
    unified: str
    changes: tuple[KeyChange, ...] = ()
    renamed_from: str | None = None  # a content-addressed name that moved with its content


@dataclass(frozen=True)
class ProfileDiff:
    profile: str
    platform: str
    impacts: tuple[str, ...]
    resources: tuple[ResourceChange, ...]
    files: tuple[FileChange, ...]
    changed_steps: tuple[str, ...]  # "<pipeline>/<step>" of the working tree's plan
    changed: bool
    costs: tuple[CostChange, ...] = ()  # estimates from list prices (mlcompile.cost.CAVEAT)
    system: str = ""  # the spec's metadata.name (several specs: one report for all)


@dataclass(frozen=True)
class DiffReport:
    base: str
    changed: bool
    profiles: tuple[ProfileDiff, ...]


@dataclass
class BuildSide:
    """One side of the comparison for one profile: its plan (when known) and its files."""

    platform: str
    plan: Plan | None
    files: dict[str, bytes] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    lineage: LineageValues = LineageValues()


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, sort_keys=True)


# ------------------------------------------------------------------------ plan resources


def _machine(step_resources: Any) -> str | None:
    machine = step_resources.machine
    return machine.name if machine is not None else None


def _accelerator(resources: Resources) -> str | None:
    accelerator = resources.accelerator
    return f"{accelerator.count}× {accelerator.type}" if accelerator else None


def _step_view(step: Step) -> dict[str, Any]:
    r = step.resources
    view: dict[str, Any] = {
        "image": step.image,
        "command": " ".join(step.command),
        "args": " ".join(step.args),
        "machine": _machine(r),
        "accelerator": _accelerator(r),
        "cpu": r.cpu,
        "memory": r.memory,
        "replicas": r.replicas,
        "spot": r.spot,
        "timeout": r.timeout_seconds,
        "depends on": ", ".join(step.depends_on) or None,
        "runs if": step.run_if,
    }
    if r.machine is not None and r.machine.node_selector:
        view["node selector"] = ", ".join(f"{k}={v}" for k, v in sorted(r.machine.node_selector.items()))
    view.update(_flat("params", step.params))
    return view


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    """A mapping as one field per leaf (`params.estimator_params.max_iter`), so that a change
    names the value that moved rather than showing the whole mapping on both sides."""
    if not isinstance(value, Mapping) or not value:
        return {prefix: value}
    return {name: leaf for key, item in sorted(value.items(), key=lambda kv: str(kv[0])) for name, leaf in _flat(f"{prefix}.{key}", item).items()}


def plan_resources(plan: Plan) -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
    """The plan as named resources, each a flat mapping of reviewable fields, and the impact
    a change to that resource has."""
    resources: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
    training_names = {plan.training.name}
    for pipeline in plan.pipelines():
        for step in pipeline.steps:
            if pipeline.name in training_names and step.kind in ("extract_features", "validate_data", "train", "tune"):
                impact = (RETRAINS,)
            elif pipeline.name in training_names:
                impact = (RETRAINS,) if step.kind in ("evaluate", "gate") else (SERVING,) if step.kind == "deploy_online" else ()
            elif step.kind == "score_batch":
                impact = (SERVING,)
            else:
                impact = ()
            resources[f"step {pipeline.name}/{step.name}"] = (_step_view(step), impact)
    for source in plan.features.sources:
        resources[f"source {source.name}"] = ({"uri": source.uri, "format": source.format, "timestamp": source.timestamp_field}, (RETRAINS,))
    for view in plan.features.views:
        resources[f"feature view {view.name}"] = (
            {"source": view.source, "entities": ", ".join(view.entities), "ttl": view.ttl_seconds, "online": view.online,
             **{f"feature {f.name}": f.dtype for f in view.features}},
            (RETRAINS, SERVING) if view.online else (RETRAINS,),
        )  # fmt: skip
    if plan.tuning is not None:
        t = plan.tuning
        fields: dict[str, Any] = {
            "objective": f"{t.goal} {t.metric}",
            "max trials": t.max_trials,
            "parallel trials": t.parallel_trials,
            "algorithm": t.algorithm,
        }
        for p in t.params:
            fields[f"param {p.name}"] = list(p.values) if p.type == "categorical" else f"{p.type} [{_show(p.min)}, {_show(p.max)}] {p.scale}"
        resources["tuning"] = (fields, (RETRAINS,))
    if plan.gates:
        resources["gates"] = ({f"{g.metric} {g.comparison.replace('_', ' ')}": g.threshold for g in plan.gates}, (RETRAINS,))
    r = plan.registry
    resources[f"registry {r.model}"] = ({"approval": r.approval, "aliases": ", ".join(r.aliases), **{f"tag {k}": v for k, v in r.tags.items()}}, (SERVING,))
    if plan.online is not None:
        e = plan.online
        canary = f"{e.canary_percent}%" if e.strategy == "canary" else None
        resources[f"endpoint {e.name}"] = (
            {"machine": _machine(e.resources), "accelerator": _accelerator(e.resources),
             "cpu": e.resources.cpu, "memory": e.resources.memory, "replicas": f"{e.min_replicas}..{e.max_replicas}",
             "autoscaling": f"{e.autoscaling_metric} {_show(e.autoscaling_target)}" if e.autoscaling_metric else None,
             "rollout": e.strategy, "canary": canary},
            (SERVING,),
        )  # fmt: skip
    if plan.monitoring is not None:
        m = plan.monitoring
        resources["monitoring"] = (
            {"drift": f"{m.drift_method} > {_show(m.drift_threshold)}" if m.drift_method else None, "drift features": ", ".join(m.drift_features) or None,
             "performance": f"{m.performance_metric} < {_show(m.performance_min)}" if m.performance_metric else None,
             "on breach": m.on_breach, "alerts": len(m.alerts)},
            (),
        )  # fmt: skip
    for schedule in plan.schedules:
        resources[f"schedule {schedule.name}"] = ({"cron": schedule.cron, "timezone": schedule.timezone, "pipeline": schedule.pipeline}, (SCHEDULE,))
    for trigger in plan.triggers:
        resources[f"trigger {trigger.name}"] = ({"on": trigger.kind.replace("_", " "), "source": trigger.source, "pipeline": trigger.pipeline}, (SCHEDULE,))
    resources["metadata"] = ({"description": plan.description, "owner": plan.owner, **{f"label {k}": v for k, v in plan.labels.items()}}, (METADATA,))
    return resources


def _cost_fields(fields: tuple[FieldChange, ...]) -> bool:
    return any(f.field in ("machine", "accelerator", "replicas", "spot") for f in fields)


def _compare_resources(old: Plan | None, new: Plan | None) -> tuple[list[ResourceChange], set[str]]:
    before = plan_resources(old) if old is not None else {}
    after = plan_resources(new) if new is not None else {}
    changes: list[ResourceChange] = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            fields, impact = after[name]
            changes.append(ResourceChange(name, "added", (), impact + ((COST,) if fields.get("machine") or fields.get("accelerator") else ())))
        elif name not in after:
            fields, impact = before[name]
            changes.append(ResourceChange(name, "removed", (), impact + ((COST,) if fields.get("machine") or fields.get("accelerator") else ())))
        else:
            (old_fields, impact), (new_fields, _) = before[name], after[name]
            diffs = tuple(
                FieldChange(key, old_fields.get(key), new_fields.get(key))
                for key in dict.fromkeys([*old_fields, *new_fields])  # the fields' own order, old first
                if old_fields.get(key) != new_fields.get(key)
            )
            if diffs:
                changes.append(ResourceChange(name, "changed", diffs, impact + ((COST,) if _cost_fields(diffs) else ())))
    changed_steps = {c.resource.split(" ", 1)[1] for c in changes if c.resource.startswith("step ") and c.change != "removed"}
    return changes, changed_steps


# ------------------------------------------------------------------------ files


def _text(content: bytes) -> list[str] | None:
    try:
        return content.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def _unified(path: str, old: bytes | None, new: bytes | None) -> str:
    """The whole unified diff (renderers cut it to fit their medium)."""
    old_lines = _text(old) if old is not None else []
    new_lines = _text(new) if new is not None else []
    if old_lines is None or new_lines is None:
        return f"binary file {path} differs\n"
    lines = list(difflib.unified_diff(old_lines, new_lines, f"a/{path}", f"b/{path}", lineterm="", n=3))
    return "\n".join(lines) + ("\n" if lines else "")


def comparable_files(old: BuildSide | None, new: BuildSide | None) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, str]]:
    """Both sides' files with lineage set aside, and the old side's content-addressed files
    renamed to their new names (the third mapping: new path → the old side's own path)."""
    before = {p: without_lineage(c, with_file_digests(old.lineage, old.files)) for p, c in old.files.items()} if old is not None else {}
    after = {p: without_lineage(c, with_file_digests(new.lineage, new.files)) for p, c in new.files.items()} if new is not None else {}
    renamed_from: dict[str, str] = {}
    for _ in range(3):  # a renamed file's references may rename another: settle in a few rounds
        pairs = pair_renamed({p: c for p, c in before.items() if p not in after}, {p: c for p, c in after.items() if p not in before})
        if not pairs:
            break
        hashes = {o: n for old_path, new_path in pairs.items() for o, n in zip(path_hashes(old_path), path_hashes(new_path)) if o != n}
        before = {pairs.get(p, p): without_lineage(c, LineageValues(), hashes) for p, c in before.items()}
        renamed_from.update({new_path: renamed_from.pop(old_path, old_path) for old_path, new_path in pairs.items()})
    return before, after, renamed_from


def _compare_files(old: BuildSide | None, new: BuildSide | None) -> list[FileChange]:
    before, after, renamed_from = comparable_files(old, new)
    kinds = {**(old.kinds if old else {}), **(new.kinds if new else {})}
    changes = []
    for path in sorted(set(before) | set(after)):
        if path == "manifest.json":
            continue  # restates the other files' hashes
        kind = kinds.get(path, "")
        if path not in before:
            changes.append(FileChange(path, kind, "added", _unified(path, None, after[path])))
        elif path not in after:
            changes.append(FileChange(path, kind, "removed", _unified(path, before[path], None)))
        elif before[path] != after[path]:
            keys = compare_files(path, before[path], after[path])
            if keys == []:
                continue  # the same data written differently (key order, quoting): not a change
            unified = "" if keys is not None else _unified(path, before[path], after[path])
            changes.append(FileChange(path, kind, "changed", unified, tuple(keys or ()), renamed_from.get(path)))
    return changes


def _cost_data(side: BuildSide | None) -> dict[str, Any] | None:
    """The cost estimate of one side, or None when that build has no cost.json."""
    from mlcompile.cost import COST_FILE, items

    if side is None:
        return {}
    content = side.files.get(COST_FILE)
    if content is None:
        return None
    try:
        data = json.loads(content)
        items(data)  # a cost.json of another shape: its file diff still shows
        return data if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _compare_costs(old: BuildSide | None, new: BuildSide | None) -> list[CostChange]:
    from mlcompile.cost import changes

    before, after = _cost_data(old), _cost_data(new)
    if before is None or after is None:
        return []
    try:
        return [CostChange(*row) for row in changes(before, after)]
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return []


def diff_builds(base_label: str, base: Mapping[str, BuildSide], head: Mapping[str, BuildSide]) -> DiffReport:
    """Compare two sets of builds keyed by profile name."""
    from mlcompile.cost import charges

    profiles = []
    for name in sorted(set(base) | set(head)):
        old, new = base.get(name), head.get(name)
        if (old is not None and old.plan is None) or (new is not None and new.plan is None):
            # a side without its plan (a cloud build from --base-dir has no plan.json): the
            # files still compare, but resources would all look added or removed
            resources, changed_steps = [], set()
        else:
            resources, changed_steps = _compare_resources(old.plan if old else None, new.plan if new else None)
        files = _compare_files(old, new)
        costs = _compare_costs(old, new)
        impacts = {impact for change in resources for impact in change.impacts}
        platform = (new or old).platform  # type: ignore[union-attr]
        if costs and charges(platform):  # nothing costs anything on this machine
            impacts.add(COST)
        if impacts - {METADATA}:
            impacts.discard(METADATA)
        elif files and not resources:
            impacts.add(METADATA)  # only lineage (the spec's hash) or formatting moved
        profiles.append(
            ProfileDiff(
                profile=name,
                platform=platform,
                impacts=tuple(i for i in IMPACT_ORDER if i in impacts),
                resources=tuple(resources),
                files=tuple(files),
                changed_steps=tuple(sorted(changed_steps)),
                changed=bool(resources or files),
                costs=tuple(costs),
            )
        )
    return DiffReport(base=base_label, changed=any(p.changed for p in profiles), profiles=tuple(profiles))
