"""Golden builds: every example compiled for every example profile, compared byte for byte
with tests/golden/<example>/<profile>/. Regenerate deliberately, then review the diff:

    pytest tests/test_golden.py --update-golden
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from mlcompile.build import compile_system, resolve_profiles, write_builds
from mlcompile.targets.registry import target_names

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(p.parent.name for p in ROOT.glob("examples/*/mlcompile.yaml"))
PROFILES = sorted(p.stem for p in ROOT.glob("targets/*.yaml"))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def build_example(example: str, profile: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Built from the repository root with relative paths, as the README does; the git
    # commit is left out of lineage so that goldens do not change with every commit.
    monkeypatch.chdir(ROOT)
    spec = f"examples/{example}/mlcompile.yaml"
    profiles = resolve_profiles(spec, [f"targets/{profile}.yaml"])
    compilation = compile_system(spec, profiles, render=True, git_commit=None)
    (folder,) = write_builds(compilation.results, out)
    return folder


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_build_matches_golden(example: str, profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    platform = next(line.split(":", 1)[1].strip() for line in (ROOT / "targets" / f"{profile}.yaml").read_text().splitlines() if line.startswith("platform:"))
    if platform not in target_names():
        pytest.skip(f"target '{platform}' is not installed")
    built = _files(build_example(example, profile, tmp_path, monkeypatch))
    golden_dir = GOLDEN / example / profile
    if update_golden:
        shutil.rmtree(golden_dir, ignore_errors=True)
        for name, content in built.items():
            (golden_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (golden_dir / name).write_bytes(content)
        return
    expected = _files(golden_dir) if golden_dir.is_dir() else {}
    problems = []
    for name in sorted(set(built) | set(expected)):
        if name not in expected:
            problems.append(f"new file {name}")
        elif name not in built:
            problems.append(f"missing file {name}")
        elif built[name] != expected[name]:
            diff = difflib.unified_diff(
                expected[name].decode(errors="replace").splitlines(), built[name].decode(errors="replace").splitlines(),
                f"golden/{example}/{profile}/{name}", f"built/{name}", lineterm="", n=2,
            )  # fmt: skip
            problems.append("\n".join(list(diff)[:80]))
    assert not problems, "\n".join(problems) + "\n\nregenerate (then review the diff): pytest tests/test_golden.py --update-golden"


@pytest.mark.parametrize("example", EXAMPLES)
def test_two_builds_are_byte_identical(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = "local"
    first = _files(build_example(example, profile, tmp_path / "a", monkeypatch))
    second = _files(build_example(example, profile, tmp_path / "b", monkeypatch))
    assert first == second
