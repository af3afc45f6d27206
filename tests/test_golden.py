"""Golden builds: every example compiled for every example profile, compared byte for byte
with tests/golden/<example>/<profile>/. Regenerate deliberately, then review the diff:

    pytest tests/test_golden.py --update-golden
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcompile import testing
from mlcompile.targets.registry import target_names

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(p.parent.name for p in ROOT.glob("examples/*/mlcompile.yaml"))
PROFILES = sorted(p.stem for p in ROOT.glob("targets/*.yaml"))


def platform_of(profile: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in (ROOT / "targets" / f"{profile}.yaml").read_text().splitlines() if line.startswith("platform:"))


def build_example(example: str, profile: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Built from the repository root with relative paths, as the README does; the git
    # commit is left out of lineage so that goldens do not change with every commit.
    monkeypatch.chdir(ROOT)
    return testing.build(f"examples/{example}/mlcompile.yaml", f"targets/{profile}.yaml", out).folder


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_build_matches_golden(example: str, profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    platform = platform_of(profile)
    if platform not in target_names():
        pytest.skip(f"target '{platform}' is not installed")
    built = build_example(example, profile, tmp_path, monkeypatch)
    testing.assert_manifest_complete(built, spec=f"examples/{example}/mlcompile.yaml")
    testing.assert_matches_golden(built, GOLDEN / example / profile, update=update_golden, regenerate="pytest tests/test_golden.py --update-golden")


@pytest.mark.parametrize("example", EXAMPLES)
def test_two_builds_are_byte_identical(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = "local"
    first = testing.read_tree(build_example(example, profile, tmp_path / "a", monkeypatch))
    second = testing.read_tree(build_example(example, profile, tmp_path / "b", monkeypatch))
    assert first == second


# azure-prod: tests/test_target_azureml.py does this for every example
@pytest.mark.slow
@pytest.mark.parametrize("profile", [p for p in PROFILES if p != "azure-prod"])
def test_a_fresh_interpreter_under_another_hash_seed_builds_the_golden_bytes(profile: str, tmp_path: Path) -> None:
    """test_build_matches_golden builds in this process under its (random) hash seed; a fresh
    interpreter under a fixed one, started from another folder, must write the same files."""
    if platform_of(profile) not in target_names():
        pytest.skip(f"target '{platform_of(profile)}' is not installed")
    spec, target = ROOT / "examples/churn/mlcompile.yaml", ROOT / "targets" / f"{profile}.yaml"
    built = testing.build_in_subprocess(spec.relative_to(ROOT), target.relative_to(ROOT), tmp_path / "out", cwd=ROOT, hash_seed="4242")
    testing.assert_matches_golden(built, GOLDEN / "churn" / profile)
