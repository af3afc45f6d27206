"""Profile policies: the limits a platform team sets, in a target profile's `policy:` block, on
what a system built for that profile may ask for.

They are checked on the spec as built for the profile (overrides merged), so a violation is
reported at the field that caused it: inside `overrides.<profile>` when the value came from
there, and at the nearest parent that is written when the rule needs a value that was left
out (a label, `spot`) or left to its default (a timeout). Every message names the rule and
the profile: the ML engineer reading it did not write the policy and must know whom to ask."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlcompile.diagnostics import Diagnostic, JsonPath, Severity, sort_diagnostics
from mlcompile.spec.loader import SourceMap
from mlcompile.spec.models import MLSystem, ServingResources
from mlcompile.spec.profile_model import TargetProfile
from mlcompile.spec.types import duration_seconds, memory_bytes


def check_policy_profile(target: TargetProfile, source_map: SourceMap) -> list[Diagnostic]:
    """Mistakes in the policy itself: accelerator names must be catalog names, as in a spec."""
    policy = target.policy
    if policy is None or policy.allowed_accelerators is None:
        return []
    from mlcompile.catalog import accelerator_names, suggest_accelerator

    known = accelerator_names()
    found = []
    for index, name in enumerate(policy.allowed_accelerators):
        if name not in known:
            suggestion = suggest_accelerator(name)
            hint = f"did you mean '{suggestion}'?" if suggestion else "known accelerators: " + ", ".join(known)
            found.append(source_map.diagnostic(("policy", "allowed_accelerators", index), f"unknown accelerator '{name}'", hint=hint))
    return found


def check_policy(
    system: MLSystem, data: dict[str, Any], source_map: SourceMap, target: TargetProfile, *, severity: Severity = "error", salvaged: bool = False
) -> list[Diagnostic]:
    """Every violation of the profile's policy by `system`, the spec merged for that profile:
    `data` is the merged document as written, `source_map` points into its overrides.
    `salvaged`: `system` validated only once the broken parts of `data` were set aside (left to
    their defaults); a value that differs from what is written is such a part, and not judged."""
    if target.policy is None:
        return []
    checker = _Checker(data, source_map, target, severity, salvaged)
    checker.resources(system)
    checker.replicas(system)
    checker.training(system)
    checker.labels(system)
    checker.endpoint(system)
    return sort_diagnostics(checker.found)  # warnings are printed as found: in file order, like errors


def _resource_blocks(system: MLSystem) -> Iterator[tuple[JsonPath, ServingResources]]:
    """Each block of resources one replica runs with: training (and so every tuning trial),
    the online endpoint, batch scoring."""
    yield ("training", "resources"), system.training.resources
    if system.deployment is not None and system.deployment.online is not None:
        yield ("deployment", "online", "resources"), system.deployment.online.resources
    if system.deployment is not None and system.deployment.batch is not None:
        yield ("deployment", "batch", "resources"), system.deployment.batch.resources


_ABSENT = object()


class _Checker:
    def __init__(self, data: dict[str, Any], source_map: SourceMap, target: TargetProfile, severity: Severity, salvaged: bool):
        assert target.policy is not None
        self.policy = target.policy
        self.profile = target.name
        self.data = data
        self.source_map = source_map
        self.severity = severity
        self.salvaged = salvaged
        self.found: list[Diagnostic] = []

    def rule(self, name: str) -> str:
        return f"policy {name} of profile {self.profile}"

    def written(self, path: JsonPath) -> bool:
        return self.as_written(path) is not _ABSENT

    def as_written(self, path: JsonPath) -> Any:
        """The value at `path` as written; _ABSENT when it is not, None when something other
        than a mapping is written on the way (set aside by salvage, if anything)."""
        node: Any = self.data
        for part in path:
            if not isinstance(node, dict):
                return None
            if part not in node:
                return _ABSENT
            node = node[part]
        return node

    def value(self, path: JsonPath, text: str) -> str:
        """A value as the message shows it: a default is said to be one, as the user never wrote it."""
        return text if self.written(path) else f"{text} (the default)"

    def report(self, path: JsonPath, message: str, hint: str | None = None, *, value: Any) -> None:
        """`value` is the one judged, as the model has it."""
        written = self.as_written(path)
        if self.salvaged and written is not _ABSENT and written != value:
            return  # a broken value: reported as such, not judged by the default standing in for it
        # an absent value is located at the key of its nearest written parent, as a missing key is
        self.found.append(self.source_map.diagnostic(path, message, hint=hint, key=not self.written(path), severity=self.severity))

    # ------------------------------------------------------------------ the rules

    def resources(self, system: MLSystem) -> None:
        from mlcompile.catalog import accelerator_names

        policy = self.policy
        for path, resources in _resource_blocks(system):
            accelerator = resources.accelerator
            # an unknown name is already an error of the spec; refusing it too would be noise
            if accelerator is not None and accelerator.type in accelerator_names():
                allowed = policy.allowed_accelerators
                if allowed is not None and accelerator.type not in allowed:
                    hint = f"profile {self.profile} allows: {', '.join(allowed)}" if allowed else f"profile {self.profile} allows no accelerators"
                    self.report(
                        (*path, "accelerator", "type"), f"{accelerator.type} is refused by {self.rule('allowed_accelerators')}", hint, value=accelerator.type
                    )
                most = policy.max_accelerators_per_replica
                if most is not None and accelerator.count > most:
                    self.report(
                        (*path, "accelerator", "count"),
                        f"{accelerator.count} accelerators per replica exceed {self.rule('max_accelerators_per_replica')} (at most {most})",
                        value=accelerator.count,
                    )
            if policy.max_cpu_per_replica is not None and resources.cpu > policy.max_cpu_per_replica:
                cores = f"{resources.cpu:g} core" if resources.cpu == 1 else f"{resources.cpu:g} cores"
                self.report(
                    (*path, "cpu"),
                    f"{self.value((*path, 'cpu'), cores)} {'exceeds' if resources.cpu == 1 else 'exceed'} {self.rule('max_cpu_per_replica')} "
                    f"(at most {policy.max_cpu_per_replica:g})",
                    value=resources.cpu,
                )
            if policy.max_memory_per_replica is not None and memory_bytes(resources.memory) > memory_bytes(policy.max_memory_per_replica):
                self.report(
                    (*path, "memory"),
                    f"{self.value((*path, 'memory'), resources.memory)} exceeds {self.rule('max_memory_per_replica')} (at most {policy.max_memory_per_replica})",
                    value=resources.memory,
                )

    def replicas(self, system: MLSystem) -> None:
        most = self.policy.max_replicas
        if most is None:
            return
        replicas = system.training.resources.replicas
        if replicas > most:
            self.report(("training", "resources", "replicas"), f"{replicas} replicas exceed {self.rule('max_replicas')} (at most {most})", value=replicas)
        elif system.training.tuning is not None and system.training.tuning.parallel_trials * replicas > most:
            # each parallel trial is a training run of its own replicas: they hold machines together
            trials = system.training.tuning.parallel_trials
            self.report(
                ("training", "tuning", "parallel_trials"),
                f"{trials} parallel trials x {replicas} replica{'s' if replicas != 1 else ''} = {trials * replicas} machines at once "
                f"exceed {self.rule('max_replicas')} (at most {most})",
                f"at most {most // replicas} parallel trial{'s fit' if most // replicas != 1 else ' fits'}",
                value=trials,
            )
        online = system.deployment.online if system.deployment is not None else None
        if online is not None and online.replicas.max > most:
            self.report(
                ("deployment", "online", "replicas", "max"),
                f"{online.replicas.max} replicas exceed {self.rule('max_replicas')} (at most {most})",
                value=online.replicas.max,
            )

    def training(self, system: MLSystem) -> None:
        policy = self.policy
        resources = system.training.resources
        if policy.spot_required and not resources.spot:
            self.report(
                ("training", "resources", "spot"),
                f"on-demand training is refused by {self.rule('spot_required')}",
                "set training.resources.spot: true (tuning trials run on the same resources); spot capacity can be "
                "reclaimed at any time, so the trainer should resume from checkpoints",
                value=resources.spot,
            )
        if policy.max_training_timeout is not None and duration_seconds(resources.timeout) > duration_seconds(policy.max_training_timeout):
            path = ("training", "resources", "timeout")
            self.report(
                path,
                f"{self.value(path, resources.timeout)} exceeds {self.rule('max_training_timeout')} (at most {policy.max_training_timeout})",
                None if self.written(path) else f"set training.resources.timeout: {policy.max_training_timeout} or less",
                value=resources.timeout,
            )
        if policy.registry_approval == "manual" and system.registry.approval == "auto":
            self.report(
                ("registry", "approval"),
                f"auto approval is refused by {self.rule('registry_approval')}",
                "set registry.approval: manual: a person approves each version that passes the gates",
                value=system.registry.approval,
            )

    def labels(self, system: MLSystem) -> None:
        required = self.policy.required_labels
        labels = system.metadata.labels
        for key in required:
            if key not in labels:
                self.report(
                    ("metadata", "labels", key),
                    f"label '{key}' is required by {self.rule('required_labels')}",
                    f"profile {self.profile} requires labels: {', '.join(required)}",
                    value=None,
                )
            elif not labels[key].strip():
                self.report(("metadata", "labels", key), f"label '{key}' is empty; {self.rule('required_labels')} needs a value", value=labels[key])

    def endpoint(self, system: MLSystem) -> None:
        fewest = self.policy.endpoint_min_replicas
        online = system.deployment.online if system.deployment is not None else None
        if fewest is None or online is None or online.replicas.min >= fewest:
            return
        path = ("deployment", "online", "replicas", "min")
        self.report(
            path,
            f"{self.value(path, str(online.replicas.min))} is below {self.rule('endpoint_min_replicas')} (at least {fewest})",
            f"set deployment.online.replicas.min: {fewest} or more" + (f" (and max too: it is {online.replicas.max})" if online.replicas.max < fewest else ""),
            value=online.replicas.min,
        )
