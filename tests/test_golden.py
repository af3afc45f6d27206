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


def build_example(example: str, profile: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Built from the repository root with relative paths, as the README does; the git
    # commit is left out of lineage so that goldens do not change with every commit.
    monkeypatch.chdir(ROOT)
    return testing.build(f"examples/{example}/mlcompile.yaml", f"targets/{profile}.yaml", out).folder


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_build_matches_golden(example: str, profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    platform = next(line.split(":", 1)[1].strip() for line in (ROOT / "targets" / f"{profile}.yaml").read_text().splitlines() if line.startswith("platform:"))
    if platform not in target_names():
        pytest.skip(f"target '{platform}' is not installed")
    built = build_example(example, profile, tmp_path, monkeypatch)
    testing.assert_matches_golden(built, GOLDEN / example / profile, update=update_golden, regenerate="pytest tests/test_golden.py --update-golden")


@pytest.mark.parametrize("example", EXAMPLES)
def test_two_builds_are_byte_identical(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = "local"
    first = testing.read_tree(build_example(example, profile, tmp_path / "a", monkeypatch))
    second = testing.read_tree(build_example(example, profile, tmp_path / "b", monkeypatch))
    assert first == second
