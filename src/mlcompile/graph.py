"""The plan's DAGs as Mermaid (for pull requests and docs) or Graphviz dot."""

from __future__ import annotations

from mlcompile.plan.nodes import Pipeline, Plan, Step


def _label(step: Step) -> str:
    resources = step.resources
    detail = []
    if resources.machine is not None and resources.machine.name:
        detail.append(resources.machine.name)
    accelerator = resources.accelerator
    if accelerator:
        detail.append(f"{accelerator.count}x {accelerator.type}")
    if resources.replicas > 1:
        detail.append(f"{resources.replicas} replicas")
    return step.name + (f" ({', '.join(detail)})" if detail else "")


def _edges(pipeline: Pipeline) -> list[tuple[str, str, str | None]]:
    edges = []
    for step in pipeline.steps:
        for upstream in step.depends_on:
            condition = "pass" if step.run_if == upstream else ("on breach" if step.run_if == "breach" else None)
            edges.append((upstream, step.name, condition))
    return edges


def _node_id(pipeline: Pipeline, step: str) -> str:
    return f"{pipeline.name}__{step}".replace("-", "_")


def to_mermaid(plan: Plan) -> str:
    lines = ["flowchart TD"]
    for pipeline in plan.pipelines():
        lines.append(f'  subgraph {pipeline.name.replace("-", "_")}["{pipeline.name}"]')
        for step in pipeline.steps:
            lines.append(f'    {_node_id(pipeline, step.name)}["{_label(step)}"]')
        for upstream, downstream, condition in _edges(pipeline):
            arrow = f" -- {condition} --> " if condition else " --> "
            lines.append(f"    {_node_id(pipeline, upstream)}{arrow}{_node_id(pipeline, downstream)}")
        lines.append("  end")
    endpoint = _endpoint(plan)
    if endpoint is not None:
        name, upstream, label = endpoint
        lines.append(f'  endpoint_{name.replace("-", "_")}[("endpoint {name}")]')
        lines.append(f"  {_node_id(plan.training, upstream)} -. {label} .-> endpoint_{name.replace('-', '_')}")
    for schedule in plan.schedules:
        node = "schedule_" + schedule.name.replace("-", "_")
        lines.append(f'  {node}(["schedule {schedule.cron} {schedule.timezone}"]) -.-> {schedule.pipeline.replace("-", "_")}')
    for trigger in plan.triggers:
        node = "trigger_" + trigger.name.replace("-", "_")
        what = "monitoring breach" if trigger.kind == "monitoring_breach" else f"new data in {trigger.source}"
        lines.append(f'  {node}(["{what}"]) -.-> {trigger.pipeline.replace("-", "_")}')
    return "\n".join(lines) + "\n"


def to_markdown(plan: Plan) -> str:
    """The Mermaid flowchart in a ```mermaid fence: pasted into a pull request or a Markdown
    page (GitHub, GitLab, MkDocs) as is, it renders as the diagram."""
    return f"```mermaid\n{to_mermaid(plan)}```\n"


def to_dot(plan: Plan) -> str:
    lines = [f'digraph "{plan.system}" {{', "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']
    for pipeline in plan.pipelines():
        lines.append(f'  subgraph "cluster_{pipeline.name}" {{')
        lines.append(f'    label="{pipeline.name}";')
        for step in pipeline.steps:
            lines.append(f'    "{_node_id(pipeline, step.name)}" [label="{_label(step)}"];')
        for upstream, downstream, condition in _edges(pipeline):
            attrs = f' [label="{condition}"]' if condition else ""
            lines.append(f'    "{_node_id(pipeline, upstream)}" -> "{_node_id(pipeline, downstream)}"{attrs};')
        lines.append("  }")
    endpoint = _endpoint(plan)
    if endpoint is not None:
        name, upstream, label = endpoint
        lines.append(f'  "endpoint {name}" [shape=cylinder];')
        lines.append(f'  "{_node_id(plan.training, upstream)}" -> "endpoint {name}" [style=dashed, label="{label}"];')
    for schedule in plan.schedules:
        lines.append(f'  "{schedule.name}" [shape=oval, label="schedule {schedule.cron} {schedule.timezone}"];')
        first = _first_step(plan, schedule.pipeline)
        if first:
            lines.append(f'  "{schedule.name}" -> "{first}" [style=dashed];')
    for trigger in plan.triggers:
        what = "monitoring breach" if trigger.kind == "monitoring_breach" else f"new data in {trigger.source}"
        lines.append(f'  "{trigger.name}" [shape=oval, label="{what}"];')
        first = _first_step(plan, trigger.pipeline)
        if first:
            lines.append(f'  "{trigger.name}" -> "{first}" [style=dashed];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _endpoint(plan: Plan) -> tuple[str, str, str] | None:
    """The online endpoint, the step that feeds it, and how: deployed by the pipeline when
    approval is automatic, by a person approving the registered version otherwise."""
    if plan.online is None:
        return None
    steps = [s.name for s in plan.training.steps]
    if "deploy-online" in steps:
        return plan.online.name, "deploy-online", "serves"
    return plan.online.name, "register", "on approval"


def _first_step(plan: Plan, pipeline_name: str) -> str | None:
    for pipeline in plan.pipelines():
        if pipeline.name == pipeline_name and pipeline.steps:
            return _node_id(pipeline, pipeline.steps[0].name)
    return None
