"""The Platform class is the only place the core learns about a platform: the core never
compares platform names, every built-in target is a `PlatformBase` declaring what the core
asks, and what a platform does not declare it can do is refused once, by the core."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mlcompile.build import compile_system, resolve_profiles
from mlcompile.plan.nodes import Plan
from mlcompile.secrets import locator
from mlcompile.targets.base import GRID_OVER_FLOAT_RANGE, Platform, PlatformBase, capability_refusals
from mlcompile.targets.registry import load_target, platform_named

ROOT = Path(__file__).parent.parent
SRC = ROOT / "src" / "mlcompile"
BUILTIN = ("kubeflow", "vertex", "sagemaker", "azureml", "local")
# `platform == "vertex"`, `plan.platform != 'local'`, `platform in ("a", "b")`, `platform not in (...)`
NAME_COMPARISON = re.compile(r"""platform\w*\)?\s*(?:[!=]=\s*["']|(?:not\s+)?in\s+[(\[{]\s*["'])""")


def test_no_platform_name_is_compared_outside_the_target_packages() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(SRC / "targets"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if NAME_COMPARISON.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "ask the Platform class (targets/<name>/platform.py) instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line", ['if platform == "local":', "if plan.platform != 'vertex':", 'if platform in ("vertex", "sagemaker"):', 'x = session.platform not in ["kubeflow"]']
)
def test_the_comparison_check_sees_each_form(line: str) -> None:
    assert NAME_COMPARISON.search(line)


@pytest.mark.parametrize("name", BUILTIN)
def test_each_builtin_target_is_a_platform_class_of_its_package(name: str) -> None:
    platform = load_target(name)
    assert isinstance(platform, Platform) and isinstance(platform, PlatformBase)
    declared = next(cls for cls in type(platform).__mro__ if cls.__module__ == f"mlcompile.targets.{name}.platform")
    assert declared.name == name and declared.title
    # its settings model lives in its package (targets/<name>/settings.py) and reads the profile's block
    assert platform.settings_model is not None and platform.settings_model.__module__ == f"mlcompile.targets.{name}.settings"
    assert platform.settings_required is (name != "local")


def test_the_capabilities_decide_the_float_grid_refusal() -> None:
    spec = ROOT / "examples" / "ranker-gpu" / "mlcompile.yaml"
    plan = compile_system(str(spec), resolve_profiles(str(spec), [str(ROOT / "targets" / "local.yaml")]), render=False).results[0].plan
    assert plan.tuning is not None
    grid = dataclasses.replace(plan, tuning=dataclasses.replace(plan.tuning, algorithm="grid"))
    floats = sorted(f"training.tuning.params.{p.name}" for p in plan.tuning.params if p.type == "float")
    assert floats
    for name in ("kubeflow", "vertex", "sagemaker", "azureml"):
        refused = capability_refusals(load_target(name), grid)
        assert sorted(d.path for d in refused) == floats, name
        assert all(d.severity == "error" and d.message.endswith(f"(target {name})") for d in refused)
    assert GRID_OVER_FLOAT_RANGE in load_target("local").capabilities
    assert capability_refusals(load_target("local"), grid) == []  # optuna enumerates points of the range
    assert capability_refusals(load_target("vertex"), plan) == []  # not a grid: nothing to refuse


def test_a_third_party_platform_gets_the_defaults() -> None:
    class Minimal(PlatformBase):
        name: ClassVar[str] = "minimal"

        def render(self, plan: Plan) -> list[Any]:
            return []

    minimal = Minimal()
    assert isinstance(minimal, Platform)
    assert minimal.title == "minimal" and minimal.capabilities == frozenset() and minimal.machine_catalog is None
    assert minimal.pricing.model == "unknown" and minimal.price_table() is None and minimal.emulator is None
    assert minimal.secret_locator({}, "token") is None and minimal.billed_deployments("canary") == 1
    assert minimal.needs_runtime_image and not minimal.runs_on_this_machine


def test_an_unknown_capability_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match="unknown capabilities"):

        class Boastful(PlatformBase):  # noqa: F841
            name: ClassVar[str] = "boastful"
            capabilities: ClassVar[frozenset[str]] = frozenset({"time_travel"})


def test_secrets_are_located_as_each_platform_maps_them() -> None:
    assert locator("vertex", {"project": "acme-ml"}, "hook") == "secretmanager:projects/acme-ml/secrets/hook/versions/latest"
    assert locator("sagemaker", {"role_arn": "arn:aws:iam::123456789012:role/x", "region": "eu-west-1"}, "hook") == (
        "secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:hook"
    )
    assert locator("kubeflow", {}, "hook") is None  # Kubernetes injects the value itself
    assert locator("not-installed", {}, "hook") is None
    assert platform_named("not-installed") is None


def test_machines_resolve_in_the_platforms_catalog_section_or_its_own_entries() -> None:
    from mlcompile.catalog import Resolution, resolve_machine
    from mlcompile.catalog.resolve import Machine

    class Pods(PlatformBase):  # a third-party platform that runs pods: Kubernetes node selectors
        name: ClassVar[str] = "pods"
        machine_catalog: ClassVar[str | None] = "kubeflow"

    class Rented(PlatformBase):  # one with machines of its own
        name: ClassVar[str] = "rented"

        def resolve_machine(self, settings: Any, *, accelerator: str | None, count: int, cpu: float, memory_gib: float) -> Resolution:
            return Resolution(Machine("rented", f"box-{cpu:g}", accelerator, None, count if accelerator else 0, cpu, memory_gib), ())

    request = {"accelerator": "nvidia-t4", "count": 1, "cpu": 4.0, "memory_gib": 16.0}
    pods = Pods().resolve_machine({"cluster": "gke"}, **request)
    assert pods == resolve_machine("kubeflow", cluster="gke", **request) and pods.machine.node_selector
    assert Rented().resolve_machine({}, **request).machine.name == "box-4"
    assert load_target("local").resolve_machine({}, **request) is None  # no catalogued machines: the plan carries the request
    # a generic cluster names its own GPU part (kubeflow.gpu_products), the catalog names the SXM one
    a100 = {**request, "accelerator": "nvidia-a100-40gb"}
    catalogued = dict(load_target("kubeflow").resolve_machine({"cluster": "generic"}, **a100).machine.node_selector)
    own = dict(
        load_target("kubeflow")
        .resolve_machine({"cluster": "generic", "gpu_products": {"nvidia-a100-40gb": "NVIDIA-A100-PCIE-40GB"}}, **a100)
        .machine.node_selector
    )
    assert own == {**catalogued, "nvidia.com/gpu.product": "NVIDIA-A100-PCIE-40GB"} != catalogued
