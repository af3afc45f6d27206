"""Shared helpers of the SageMaker target tests (no tests here): plans of the examples for
the aws-prod profile, and builds written the way `mlcompile build`
writes them."""

from __future__ import annotations

import os
from pathlib import Path

from mlcompile.build import Compiled, resolve_profiles, write_builds
from mlcompile.plan.lower import lower
from mlcompile.plan.nodes import Plan
from mlcompile.spec.resolve import load_system

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "aws-prod"


def plan_of(example: str, profile: str = PROFILE) -> tuple[Plan, object]:
    """The lowered plan (with what the platform adds, before its check), and its profile."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        spec = f"examples/{example}/mlcompile.yaml"
        profiles = resolve_profiles(spec, [f"targets/{profile}.yaml"])
        bundle = load_system(spec, profiles.profiles, profiles.known_names)
        (chosen,) = profiles.profiles
        plan, _ = lower(bundle.per_profile[chosen.name], chosen, git_commit=None)
        return plan, chosen
    finally:
        os.chdir(cwd)


def write(plan: Plan, profile: object, out: Path) -> Path:
    from mlcompile.targets.sagemaker import SageMakerTarget

    files = SageMakerTarget().render(plan)
    (folder,) = write_builds([Compiled(profile, plan, files)], out)  # type: ignore[arg-type]
    return folder


def all_builds(out: Path) -> dict[str, Path]:
    builds = {}
    for example in ("churn", "batch-scoring"):
        plan, profile = plan_of(example)
        builds[example] = write(plan, profile, out / example)
    plan, profile = plan_of("ranker-gpu")
    builds["ranker-tuned"] = write(plan, profile, out / "ranker-tuned")
    return builds


def plan_of_text(text: str, folder: Path, profile: str = PROFILE) -> tuple[Plan, object]:
    """The plan of a spec variant written to `folder` (profiles stay in the repo's targets/)."""
    spec = folder / "mlcompile.yaml"
    spec.write_text(text)
    profiles = resolve_profiles(str(spec), [str(ROOT / "targets" / f"{profile}.yaml")])
    bundle = load_system(str(spec), profiles.profiles, profiles.known_names)
    (chosen,) = profiles.profiles
    plan, _ = lower(bundle.per_profile[chosen.name], chosen, git_commit=None)
    return plan, chosen


def example_text(example: str, *replacements: tuple[str, str]) -> str:
    text = (ROOT / "examples" / example / "mlcompile.yaml").read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text
