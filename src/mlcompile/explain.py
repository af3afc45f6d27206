"""`mlcompile explain`: what a build will create on a platform, in words, for people who do not
read KFP IR or SageMaker JSON. Built from the compiled plan (the same one every target renders),
plus the kinds of file the target writes when the build was rendered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mlcompile.plan.nodes import Accelerator, Machine, OnlineEndpoint, Plan, Resources, Step
from mlcompile.targets.base import OutputFile

# the settings that say *where*: shown on the first line, in this order, when present
_WHERE_KEYS = ("project", "region", "account", "subscription_id", "resource_group", "workspace", "host", "namespace", "cluster", "workdir")


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "no timeout"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def machine_text(resources: Resources) -> str:
    """The machine a request resolved to, or the request itself where there is no machine type
    (Kubernetes requests and limits, this machine)."""
    machine: Machine | None = resources.machine
    accelerator = resources.accelerator
    if machine is not None and machine.name:
        text = f"{machine.name} ({_number(machine.vcpus)} vCPU, {_number(machine.memory_gib)} GiB"
        if accelerator:
            text += f", {accelerator.count}x {_accelerator(accelerator)}"
        return text + ")"
    text = f"{resources.cpu:g} CPU, {resources.memory}"
    if accelerator:
        text += f", {accelerator.count}x {_accelerator(accelerator)}"
    if machine is not None and machine.node_selector:
        text += ", on nodes " + ", ".join(f"{key}={value}" for key, value in sorted(machine.node_selector.items()))
    return text


def _accelerator(accelerator: Accelerator) -> str:
    """The portable accelerator name, with the platform's own name for it when that differs."""
    native = accelerator.platform_name
    return f"{accelerator.type} ({native})" if native and native != accelerator.type else accelerator.type


def _resources_text(resources: Resources, *, timeout: bool = True) -> str:
    parts = [machine_text(resources)]
    if resources.replicas > 1:
        parts.append(f"{resources.replicas} replicas")
    if resources.spot:
        parts.append("spot")
    if timeout:
        parts.append("no timeout" if resources.timeout_seconds is None else f"timeout {duration(resources.timeout_seconds)}")
    return ", ".join(parts)


def _step_line(number: int, step: Step) -> str:
    after = f"after {', '.join(step.depends_on)}" if step.depends_on else "first"
    condition = ""
    if step.run_if == "breach":
        condition = "; only on a monitoring breach"
    elif step.run_if:
        condition = f"; only when {step.run_if} passes"
    code = "your container" if step.uses_user_container else "mlcompile runtime"
    return f"  {number}. {step.name} [{step.kind}] on {_resources_text(step.resources)} ({code}; {after}{condition})"


def _endpoint_lines(endpoint: OnlineEndpoint) -> list[str]:
    lines = [f"Online endpoint {endpoint.name}", f"  serves model {endpoint.model} on {_resources_text(endpoint.resources, timeout=False)}"]
    lines.append(f"  request timeout {duration(endpoint.resources.timeout_seconds)}")
    replicas = f"  replicas {endpoint.min_replicas}..{endpoint.max_replicas}"
    if endpoint.autoscaling_metric:
        replicas += f", autoscaling on {endpoint.autoscaling_metric} at {_number(endpoint.autoscaling_target)}"
    lines.append(replicas)
    rollout = {"replace": "replace the serving version at once", "blue_green": "blue/green: a new version takes traffic when switched"}
    if endpoint.strategy == "canary":
        lines.append(f"  rollout: canary, {endpoint.canary_percent}% of traffic on a new version first")
    else:
        lines.append(f"  rollout: {rollout[endpoint.strategy]}")
    lines.append(
        "  a new version is deployed "
        + ("once a person approves it in the registry" if endpoint.requires_approval else "by the training pipeline when it passes the gates")
    )
    return lines


def _gate_text(plan: Plan) -> list[str]:
    texts = []
    for gate in plan.gates:
        if gate.comparison == "min":
            texts.append(f"{gate.metric} >= {gate.threshold:g}")
        elif gate.comparison == "max":
            texts.append(f"{gate.metric} <= {gate.threshold:g}")
        else:
            texts.append(f"{gate.metric} >= production {'+' if gate.threshold >= 0 else ''}{gate.threshold:g}")
    return texts


def explain_plan(plan: Plan, files: Sequence[OutputFile] | None = None) -> str:
    """The readable account of one profile's plan (and of its rendered files, when given)."""
    settings = plan.platform_settings or {}
    where = ", ".join(f"{key} {settings[key]}" for key in _WHERE_KEYS if settings.get(key))
    from mlcompile.targets.registry import platform_named

    found = platform_named(plan.platform)
    title = found.title if found is not None else plan.platform
    lines = [f"{plan.system} on profile {plan.profile}: {title}" + (f" ({where})" if where else "")]
    if plan.description:
        lines.append(plan.description)
    lines.append("")

    store = plan.features
    online = [view.name for view in store.views if view.online]
    lines.append(
        f"Features: {len(store.views)} view{'s' if len(store.views) != 1 else ''} over {len(store.sources)} source{'s' if len(store.sources) != 1 else ''}"
        + (f"; online: {', '.join(online)}" if online else "; none online")
    )
    for source in store.sources:
        lines.append(f"  source {source.name}: {source.uri} ({source.format}, time {source.timestamp_field})")
    for view in store.views:
        keys = ", ".join(view.join_keys)
        served = f'online, materialised "{view.refresh_cron}" UTC' if view.online else "offline only"
        lines.append(
            f"  view {view.name}: {len(view.features)} feature{'s' if len(view.features) != 1 else ''} by {keys} from {view.source}, ttl {duration(view.ttl_seconds)}, {served}"
        )
    lines.append("")

    for pipeline in plan.pipelines():
        lines.append(f"Pipeline {pipeline.name}: {pipeline.description}")
        lines += [_step_line(number, step) for number, step in enumerate(pipeline.steps, start=1)]
        lines.append("")

    if plan.tuning is not None:
        tuning = plan.tuning
        lines.append(
            f"Tuning: {tuning.algorithm}, {tuning.max_trials} trials ({tuning.parallel_trials} at a time), "
            f"{tuning.goal} {tuning.metric} over {', '.join(p.name for p in tuning.params)}"
        )
    if plan.gates:
        lines.append("Gates (all must pass before registration): " + "; ".join(_gate_text(plan)))
    registry = plan.registry
    lines.append(f"Registry: model {registry.model}, approval {registry.approval}" + (f", aliases {', '.join(registry.aliases)}" if registry.aliases else ""))
    lines.append("")

    if plan.online is not None:
        lines += _endpoint_lines(plan.online) + [""]

    if plan.schedules:
        lines.append("Schedules")
        for schedule in plan.schedules:
            lines.append(f'  {schedule.name}: "{schedule.cron}" {schedule.timezone} starts {schedule.pipeline}')
        lines.append("")
    if plan.triggers:
        lines.append("Triggers")
        for trigger in plan.triggers:
            what = "a monitoring breach" if trigger.kind == "monitoring_breach" else f"new data in {trigger.source}"
            lines.append(f"  {trigger.name}: {what} starts {trigger.pipeline}")
        lines.append("")
    if plan.monitoring is not None:
        monitor = plan.monitoring
        lines.append("Monitoring")
        if monitor.drift_method:
            lines.append(f"  drift: {monitor.drift_method} above {_number(monitor.drift_threshold)} on {', '.join(monitor.drift_features) or 'every feature'}")
        if monitor.performance_metric:
            lines.append(f"  performance: {monitor.performance_metric} below {_number(monitor.performance_min)}")
        for alert in monitor.alerts:
            target = alert.get("to") or alert.get("url") or ""
            lines.append(f"  alert: {alert.get('channel')} " + (", ".join(target) if isinstance(target, list) else str(target)))
        lines.append(f"  on a breach: {monitor.on_breach}")
        lines.append("")

    from mlcompile.cost import COST_KIND, explain_lines

    lines += explain_lines(plan) + [""]

    if files is not None:
        # cost.json and manifest.json are mlcompile's own, beside whatever the target writes
        files = [f for f in files if f.kind != COST_KIND]
        kinds = Counter(f.kind for f in files)
        lines.append(f"Files the {plan.platform} target writes ({len(files)} + cost.json + manifest.json)")
        width = max((len(kind) for kind in kinds), default=0)
        for kind, count in kinds.items():
            example = next(f.path for f in files if f.kind == kind)
            lines.append(f"  {kind.ljust(width)}  {count}  e.g. {example}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
