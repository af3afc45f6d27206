"""The CI integration users copy: a GitHub Actions workflow that satisfies GitHub's schema
and calls real mlcompile options, and a pre-commit hook that really validates specs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlcompile.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "docs" / "ci" / "github-actions.yml"


def test_workflow_satisfies_the_github_workflow_schema() -> None:
    checker = shutil.which("check-jsonschema") or pytest.skip("check-jsonschema is not installed (dev extra)")
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_calls_only_real_mlcompile_commands_and_options() -> None:
    steps = [step for job in yaml.safe_load(WORKFLOW.read_text())["jobs"].values() for step in job["steps"]]
    calls = [line.strip() for step in steps for line in step.get("run", "").splitlines() if line.strip().startswith("mlcompile ")]
    assert {c.split()[1] for c in calls} >= {"validate", "diff", "deploy"}
    for call in calls:
        words = shlex.split(call.replace("$PROFILES", "--target p.yaml"))
        help_text = CliRunner().invoke(main, [words[1], "--help"]).output
        for option in (w for w in words if w.startswith("--")):
            assert re.search(rf"{re.escape(option)}\b", help_text), f"{words[1]} has no option {option}"


def test_pre_commit_hook_file_names_a_real_command() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "mlcompile-validate" and hook["entry"] == "mlcompile validate"
    assert re.search(hook["files"], "systems/churn/mlcompile.yaml") and not re.search(hook["files"], "targets/aws.yaml")


@pytest.mark.timeout(600)
def test_pre_commit_hook_passes_a_valid_spec_and_stops_a_broken_one(tmp_path: Path) -> None:
    pre_commit = shutil.which("pre-commit") or pytest.skip("pre-commit is not installed (dev extra)")
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "churn", repo / "churn", ignore=shutil.ignore_patterns("data"))
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
           "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}  # fmt: skip
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)

    def run_hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run([pre_commit, "try-repo", str(ROOT), "mlcompile-validate", "--all-files"], cwd=repo, env=env, capture_output=True, text=True)

    passed = run_hook()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    spec = repo / "churn" / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("approval: manual", "approval: manul"))
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    failed = run_hook()
    assert failed.returncode == 1
    assert "churn/mlcompile.yaml:" in failed.stdout and "'manul' is not one of 'manual' or 'auto'" in failed.stdout
    assert sys.executable  # the hook ran in pre-commit's own environment, not this one
