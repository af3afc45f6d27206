"""Property-based fuzzing of whole builds: specs written from scratch by a generator
(specgen.py), not only mutations of one shipped spec.

* every generated spec is valid: `validate` passes it, and the local target builds it;
* every generated spec, built for every installed target, either builds or is refused with
  located error diagnostics (a platform may not offer an accelerator, say) — never an
  exception — and a second build gives the same bytes;
* builds do not depend on the interpreter's hash seed: the same specs built by `mlcompile
  build` under PYTHONHASHSEED=0, 12345 and a random one give identical output trees;
* generated specs mutated by tests/test_fuzz.py's mutators end in exit 0 or 2, never a
  traceback, and exit 2 comes with a located `file:LINE:COL: error:` line.

CI runs a few hundred inputs (`MLCOMPILE_FUZZ_SCALE=10` for ten times as many, as in
tests/test_fuzz.py); `python bench/fuzz.py valid|mutated` runs 10,000 of each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from test_fuzz import TARGET_CHOICES, assert_clean, fuzz_settings, mutated, run_validate

from reliability import specgen

RUNNER_PROFILES = sorted(specgen.PROFILE_TEXTS)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """spec/ for the generated spec, profiles/ (also the `targets/` of every build)."""
    root = tmp_path_factory.mktemp("fuzz-build")
    (root / "spec").mkdir()
    return root


@pytest.fixture(scope="module")
def profiles(workspace: Path) -> specgen.ProfileSet:
    return specgen.load_profile_set(workspace / "profiles")


@fuzz_settings(100)
@given(data=specgen.valid_specs())
def test_generated_specs_are_valid(workspace: Path, profiles: specgen.ProfileSet, data: dict[str, Any]) -> None:
    """The generator writes valid specs: `validate` without profiles has nothing to say."""
    spec = workspace / "spec" / "mlcompile.yaml"
    spec.write_bytes(specgen.dump(data))
    result = run_validate(spec, [])
    assert_clean(result, spec.read_text())
    assert result.exit_code == 0, result.stderr


@fuzz_settings(10)  # ~0.8 s a spec for five targets, twice: MLCOMPILE_FUZZ_SCALE or bench/fuzz.py for more
@given(data=specgen.valid_specs())
def test_generated_specs_build_for_every_target(workspace: Path, profiles: specgen.ProfileSet, data: dict[str, Any]) -> None:
    spec = workspace / "spec" / "mlcompile.yaml"
    spec.write_bytes(specgen.dump(data))
    first = specgen.build_once(spec, profiles)
    for outcome in first:
        assert outcome.problem is None, f"{outcome.profile}: {outcome.problem}\n--- spec ---\n{spec.read_text()}"
    assert next(o for o in first if o.profile == "local").built, "a valid spec must build for the local platform"
    again = specgen.build_once(spec, profiles)
    for one, two in zip(first, again):
        assert one.diagnostics == two.diagnostics, one.profile
        differing = sorted(p for p in {*one.files, *two.files} if one.files.get(p) != two.files.get(p))
        assert not differing, f"{one.profile}: a second build differs in {differing}"


# Builds the specs given for every profile in a folder, as build_once does, and prints each
# (spec, profile)'s digest of files and diagnostics as JSON: run under different hash seeds.
BUILD_SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import specgen
from mlcompile.build import resolve_profiles
profiles = resolve_profiles(sys.argv[3], [sys.argv[2]])
print(json.dumps(specgen.build_digests([Path(p) for p in sys.argv[3:]], profiles), sort_keys=True))
"""


def test_builds_do_not_depend_on_the_hash_seed(workspace: Path, profiles: specgen.ProfileSet, tmp_path: Path) -> None:
    """Sets and dicts of str iterate in an order that depends on PYTHONHASHSEED: if any of it
    leaked into the output, the same spec would build differently in two CI runs. Three
    generated specs, built for every profile in fresh interpreters under PYTHONHASHSEED=0 and
    12345 and in this process (random unless set): the same files and the same refusals."""
    specs: list[Path] = []

    @settings(max_examples=3, deadline=None, database=None, derandomize=True, phases=[Phase.generate])
    @given(data=specgen.valid_specs())
    def collect(data: dict[str, Any]) -> None:
        spec = tmp_path / f"system-{len(specs)}" / "mlcompile.yaml"
        spec.parent.mkdir(parents=True)
        spec.write_bytes(specgen.dump(data))
        specs.append(spec)

    collect()

    def build(hash_seed: str) -> dict[str, Any]:
        command = [sys.executable, "-c", BUILD_SCRIPT, str(Path(__file__).parent), str(workspace / "profiles"), *map(str, specs)]
        done = subprocess.run(command, env=os.environ | {"PYTHONHASHSEED": hash_seed}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    with ThreadPoolExecutor(max_workers=2) as pool:
        seed_0, seed_12345 = pool.map(build, ["0", "12345"])
    in_process = json.loads(json.dumps(specgen.build_digests(specs, profiles)))
    assert len(in_process) == 3 * len(profiles.profiles)
    assert any(digest for digest, _diagnostics in in_process.values()), "nothing was built"
    assert seed_0 == seed_12345 == in_process


@fuzz_settings(200)
@given(base=specgen.valid_specs(), data=st.data(), targets=TARGET_CHOICES)
def test_mutated_generated_specs_end_in_exit_0_or_2(
    workspace: Path, profiles: specgen.ProfileSet, base: dict[str, Any], data: st.DataObject, targets: tuple[str, ...]
) -> None:
    """tests/test_fuzz.py's mutations, applied to generated specs (many more shapes than the
    one spec they start from there), validated against any of the profiles."""
    raw = specgen.dump(data.draw(mutated(base)))
    spec = workspace / "spec" / "mlcompile.yaml"
    spec.write_bytes(raw)
    names = [t for t in targets if t in RUNNER_PROFILES]
    assert_clean(run_validate(spec, [workspace / "profiles" / f"{t}.yaml" for t in names]), raw)


# ------------------------------------------------------------------------------ regressions


def test_fractional_memory_builds_for_kubeflow(workspace: Path, profiles: specgen.ProfileSet) -> None:
    """The spec allows `memory: 7.5Gi`; kfp's task setters take whole quantities only, so the
    Kubeflow IR carries 7680Mi (found by the generator: render() raised ValueError)."""
    import yaml

    data = yaml.safe_load(specgen.PROFILE_DIR.parent.joinpath("fixture", "mlcompile.yaml").read_text())
    data["training"]["resources"]["memory"] = "7.5Gi"
    data["training"]["resources"].pop("accelerator")
    data["training"].pop("tuning")  # a tuned step is a Katib trial, whose pod takes '7.5Gi' as it is
    spec = workspace / "spec" / "fractional-memory.yaml"
    spec.write_bytes(specgen.dump(data))
    (outcome,) = [o for o in specgen.build_once(spec, profiles) if o.profile == "kfp-prod"]
    assert outcome.built, outcome.problem or outcome.diagnostics
    assert b"resourceMemoryLimit: 7680Mi" in outcome.files["pipelines/churn-prediction-training.yaml"]
