"""The one rule by which every command finds its target profiles (docs/spec.md): `--target`
given → those; else `targets/` beside the spec (graph, run, serve: its local profiles); none →
validate checks the spec alone, graph/run/serve use this machine, the others say what to pass;
a command that acts on one profile refuses several, naming them. And a target whose SDK is
missing says which pip extra installs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlcompile.build import select_profiles
from mlcompile.cli import main
from mlcompile.errors import UsageError

FIXTURE = Path(__file__).parent / "fixtures" / "system"  # mlcompile.yaml + targets/{gcp-prod,local}.yaml
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def beside(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "system")
    return tmp_path / "system" / "mlcompile.yaml"


@pytest.fixture
def alone(tmp_path: Path) -> Path:
    (tmp_path / "alone").mkdir()
    shutil.copy(FIXTURE / "mlcompile.yaml", tmp_path / "alone" / "mlcompile.yaml")
    return tmp_path / "alone" / "mlcompile.yaml"


def names(spec: Path, command: str, *targets: str) -> list[str]:
    return [p.name for p in select_profiles(str(spec), targets, command).profiles]


def test_target_given_is_exactly_those(beside: Path) -> None:
    for command in ("validate", "build", "diff", "explain", "deploy", "graph", "run", "serve"):
        assert names(beside, command, str(beside.parent / "targets" / "gcp-prod.yaml")) == ["gcp-prod"]


def test_otherwise_the_profiles_beside_the_spec(beside: Path) -> None:
    for command in ("validate", "build", "diff"):
        assert names(beside, command) == ["gcp-prod", "local"]
    for command in ("graph", "run", "serve"):  # on this machine: the local profile beside the spec
        assert names(beside, command) == ["local"]


@pytest.mark.parametrize("command", ["explain", "deploy"])
def test_a_one_profile_command_refuses_several_and_names_them(beside: Path, command: str) -> None:
    with pytest.raises(UsageError, match=rf"{command} acts on one profile and 2 were found \(gcp-prod, local\): choose one with --target"):
        select_profiles(str(beside), (), command)


def test_none_found(alone: Path) -> None:
    assert names(alone, "validate") == []  # the spec alone
    for command in ("graph", "run", "serve"):
        assert names(alone, command) == ["local"]  # this machine
    for command in ("build", "diff", "explain", "deploy"):
        with pytest.raises(UsageError, match=rf"{command} needs a target profile: pass --target PROFILE, or keep the profiles in .*targets/"):
            select_profiles(str(alone), (), command)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_build_and_explain_find_the_profiles_beside_the_spec(beside: Path, tmp_path: Path) -> None:
    done = run("build", str(beside), "--out", str(tmp_path / "out"), "--git-commit", "none")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gcp-prod", "local"]
    done = run("explain", str(beside), "--no-files")
    assert done.exit_code == 2 and "explain acts on one profile and 2 were found (gcp-prod, local)" in done.stderr
    done = run("explain", str(beside), "--no-files", "--target", str(beside.parent / "targets" / "local.yaml"))
    assert done.exit_code == 0, done.output


def test_a_missing_target_sdk_names_the_pip_extra(tmp_path: Path) -> None:
    """boto3 made unimportable in a fresh interpreter: the build says what to install, exit 2."""
    code = "import sys; sys.modules['boto3'] = None; from mlcompile.cli import main; main()"
    command = [sys.executable, "-c", code, "build", "examples/batch-scoring/mlcompile.yaml", "--target", "targets/aws-prod.yaml", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "target 'sagemaker' needs boto3, which is not installed" in done.stderr
    assert "hint: pip install 'mlcompile[sagemaker]'" in done.stderr
    assert "please report" not in done.stderr
