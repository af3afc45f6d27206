"""The CI integration users copy: the GitHub Action, the example workflows for GitHub, GitLab
and Azure DevOps and the release workflow satisfy their platform's schema and call only what
exists; `--format github` annotates errors on their file and line; the pre-commit hooks
validate specs against their profiles and re-validate the specs a changed profile governs."""

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

from mlcompile.ci.precommit import main as pre_commit_entry
from mlcompile.cli import main
from mlcompile.diagnostics import Diagnostic, render_github

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
SCRIPTS = sorted((ROOT / "action").glob("*.sh"))
GITHUB_WORKFLOWS = [
    ROOT / "docs" / "ci" / "github-actions.yml",
    ROOT / "docs" / "ci" / "github-actions-comment.yml",
    ROOT / ".github" / "workflows" / "release.yml",
]
CI_FILES = [
    ("vendor.github-actions", ROOT / "action.yml"),
    *(("vendor.github-workflows", path) for path in GITHUB_WORKFLOWS),
    ("vendor.gitlab-ci", ROOT / "docs" / "ci" / "gitlab-ci.yml"),
    ("vendor.azure-pipelines", ROOT / "docs" / "ci" / "azure-pipelines.yml"),
]


@pytest.mark.parametrize(("schema", "path"), CI_FILES, ids=[p.name for _, p in CI_FILES])
def test_ci_files_satisfy_their_platforms_schema(schema: str, path: Path) -> None:
    checker = shutil.which("check-jsonschema") or pytest.skip("check-jsonschema is not installed (dev extra)")
    # the Azure Pipelines schema has patterns only Python's regex engine reads
    result = subprocess.run([checker, "--regex-variant", "python", "--builtin-schema", schema, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _steps_using_the_action(path: Path) -> list[dict[str, object]]:
    jobs = yaml.safe_load(path.read_text())["jobs"].values()
    return [step for job in jobs for step in job["steps"] if str(step.get("uses", "")).split("@")[0].endswith("/mlcompile")]


@pytest.mark.parametrize("path", GITHUB_WORKFLOWS[:2], ids=lambda p: p.name)
def test_example_workflows_pass_the_action_only_inputs_it_declares(path: Path) -> None:
    steps = _steps_using_the_action(path)
    assert steps
    for step in steps:
        given = step["with"]
        assert isinstance(given, dict) and set(given) <= set(ACTION["inputs"]), set(given) - set(ACTION["inputs"])
        assert given["command"] in {"review", "deploy", "validate", "comment"}


def test_the_deploy_example_logs_in_to_every_cloud_and_never_runs_two_deploys_of_a_profile_at_once() -> None:
    workflow = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text())
    deploy = workflow["jobs"]["deploy"]
    assert deploy["permissions"]["id-token"] == "write" and deploy["concurrency"]["cancel-in-progress"] is False
    logins = {
        step["uses"].split("@")[0]
        for step in ACTION["runs"]["steps"]
        if "login" in step.get("name", "").lower() or "credentials" in step.get("name", "").lower()
    }
    assert logins == {"google-github-actions/auth", "google-github-actions/get-gke-credentials", "aws-actions/configure-aws-credentials", "azure/login"}


def test_the_fork_comment_workflow_checks_out_no_code() -> None:
    workflow = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions-comment.yml").read_text())
    assert "pull_request_target" not in workflow[True]  # `on:` reads as True in YAML 1.1
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert not any(str(step.get("uses", "")).startswith("actions/checkout") for step in steps)


def test_scripts_call_only_real_mlcompile_commands_and_options() -> None:
    """Options a newer mlcompile adds (probed with has_option) are left out: the scripts use
    them only when the installed mlcompile lists them."""
    lines = [line.strip() for script in SCRIPTS for line in script.read_text().splitlines()]
    calls = [line for line in lines if line.startswith("mlcompile ") and not line.startswith('mlcompile "$')]
    assert {c.split()[1] for c in calls} >= {"validate", "diff", "deploy"}
    probed = {m for script in SCRIPTS for m in re.findall(r"has_option \w+ (--[\w-]+)", script.read_text())}
    for call in calls:
        words = shlex.split(call.split(" #")[0].replace("\\", ""))
        help_text = CliRunner().invoke(main, [words[1], "--help"]).output
        for option in (w for w in words if w.startswith("-") and w not in probed):
            assert re.search(rf"{re.escape(option)}\b", help_text), f"{words[1]} has no option {option}"


def test_scripts_detect_the_options_the_installed_mlcompile_has() -> None:
    probe = "source action/lib.sh; has_option diff --exit-code && ! has_option diff --no-such-option && ! has_option deploy --plan-"
    done = subprocess.run(["bash", "-c", probe], cwd=ROOT, env={**os.environ, "MLCOMPILE_SPECS": "x"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_gitlab_and_azure_examples_run_the_actions_scripts_with_the_variables_they_read() -> None:
    read = {m for script in SCRIPTS for m in re.findall(r"\$\{?(MLCOMPILE_[A-Z_]+)", script.read_text())}
    read |= set(re.findall(r"\b(MLCOMPILE_[A-Z_]+)", (ROOT / "src" / "mlcompile" / "ci" / "comment.py").read_text()))
    for name in ("gitlab-ci.yml", "azure-pipelines.yml"):
        text = (ROOT / "docs" / "ci" / name).read_text()
        for script in re.findall(r"/action/([\w-]+\.sh)", text):
            assert (ROOT / "action" / script).is_file(), script
        given = set(re.findall(r"\b(MLCOMPILE_[A-Z_]+)(?=[:=])", text))
        assert given and given <= read | {"MLCOMPILE_REPO", "MLCOMPILE_REF", "MLCOMPILE_EXTRAS", "MLCOMPILE_PROFILE"}, given - read


def test_a_release_tag_must_name_the_version_in_pyproject() -> None:
    check = ROOT / ".github" / "workflows" / "check_tag_version.py"
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]  # type: ignore[index]
    matching = subprocess.run([sys.executable, str(check), f"v{version}"], capture_output=True, text=True)
    assert matching.returncode == 0 and matching.stdout == f"version={version}\n"
    other = subprocess.run([sys.executable, str(check), "v99.0.0"], capture_output=True, text=True)
    assert other.returncode == 1 and f"({version})" in other.stderr


def test_github_annotations_escape_what_would_end_the_command() -> None:
    diagnostic = Diagnostic("sys,a:b/mlcompile.yaml", 3, 7, "error", "x.y", "100% sure\r\nline two", hint="try: this")
    assert render_github([diagnostic]) == (
        "::error file=sys%2Ca%3Ab/mlcompile.yaml,line=3,col=7,title=mlcompile::x.y: 100%25 sure%0D%0Aline two%0Ahint: try: this"
    )


def test_build_and_diff_print_their_errors_as_annotations_on_request(tmp_path: Path) -> None:
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text((ROOT / "examples" / "churn" / "mlcompile.yaml").read_text().replace("approval: manual", "approval: manul"))
    local = str(ROOT / "targets" / "local.yaml")
    for command in (["build", str(spec), "--target", local, "--out", str(tmp_path / "out")], ["diff", str(spec), "--target", local]):
        result = CliRunner().invoke(main, [*command, "--diagnostics", "github"])
        assert result.exit_code == 2
        assert re.search(rf"^::error file={re.escape(str(spec))},line=\d+,col=\d+,title=mlcompile::registry.approval: 'manul'", result.stderr, re.M)
    assert not (tmp_path / "out").exists()
    usage = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "out"), "--diagnostics", "github"])
    assert usage.exit_code == 2 and usage.stderr == (
        f"::error title=mlcompile::error: build needs a target profile: pass --target PROFILE, or keep the profiles in {tmp_path}/targets/\n"
    )


def _policy_layout(tmp_path: Path) -> Path:
    """A repository in the documented layout: systems/churn/ holds the spec and its targets/."""
    repo = tmp_path / "repo"
    system = repo / "systems" / "churn"
    system.mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "churn" / "mlcompile.yaml", system / "mlcompile.yaml")
    shutil.copytree(ROOT / "targets", system / "targets")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    return repo


def _run_entry(repo: Path, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        with pytest.raises(SystemExit) as exit_:
            pre_commit_entry(list(argv))
    finally:
        os.chdir(cwd)
    return int(exit_.value.code or 0), capsys.readouterr().err


def test_the_spec_hook_applies_its_profiles_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _policy_layout(tmp_path)
    spec = repo / "systems" / "churn" / "mlcompile.yaml"
    assert _run_entry(repo, "systems/churn/mlcompile.yaml", capsys=capsys)[0] == 0
    spec.write_text(spec.read_text().replace("replicas: {min: 2, max: 6}", "replicas: {min: 2, max: 40}"))
    status, err = _run_entry(repo, "systems/churn/mlcompile.yaml", capsys=capsys)
    assert status == 2
    assert re.search(
        r"systems/churn/mlcompile.yaml:\d+:\d+: error: deployment.online.replicas.max: 40 replicas exceed policy max_replicas of profile aws-prod", err
    )


def test_a_changed_profile_revalidates_the_specs_that_use_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _policy_layout(tmp_path)
    (repo / "other" / "targets").mkdir(parents=True)
    (repo / "other" / "targets" / "unused.yaml").write_text("not even a profile: [")
    assert _run_entry(repo, "other/targets/unused.yaml", capsys=capsys) == (0, "")  # no spec uses that folder
    profile = repo / "systems" / "churn" / "targets" / "aws-prod.yaml"
    profile.write_text(profile.read_text().replace("max_replicas: 16", "max_replicas: 4"))
    status, err = _run_entry(repo, "systems/churn/targets/aws-prod.yaml", "--format", "github", capsys=capsys)
    assert status == 2
    assert re.search(
        r"^::error file=systems/churn/mlcompile.yaml,line=\d+,col=\d+,title=mlcompile::deployment.online.replicas.max: 6 replicas exceed", err, re.M
    )


def test_with_profiles_named_in_the_hooks_args_a_changed_profile_revalidates_every_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _policy_layout(tmp_path)
    shutil.move(repo / "systems" / "churn" / "targets", repo / "targets")  # one targets/ at the root for every system
    profile = repo / "targets" / "kfp-gke.yaml"
    profile.write_text(profile.read_text().replace("max_replicas: 12", "max_replicas: 3"))
    status, err = _run_entry(repo, "--target", "targets/", "targets/kfp-gke.yaml", capsys=capsys)
    assert status == 2 and "6 replicas exceed policy max_replicas of profile kfp-gke (at most 3)" in err


def test_pre_commit_hook_file_declares_both_hooks() -> None:
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"mlcompile-validate", "mlcompile-validate-profiles"}
    scripts = re.search(r"\[project\.scripts\]\n((?:.+\n)+)", (ROOT / "pyproject.toml").read_text())[1]  # type: ignore[index]
    assert all(f'{hook["entry"]} = "mlcompile.ci.precommit:main"' in scripts for hook in hooks.values())
    assert re.search(hooks["mlcompile-validate"]["files"], "systems/churn/mlcompile.yaml")
    assert re.search(hooks["mlcompile-validate-profiles"]["files"], "systems/churn/targets/aws-prod.yaml")
    assert not re.search(hooks["mlcompile-validate-profiles"]["files"], "systems/churn/mlcompile.yaml")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pre_commit_runs_the_hooks_as_published(tmp_path: Path) -> None:
    """Through `pre-commit try-repo` (which installs this repository in a fresh environment,
    as pre-commit does): a tightened profile policy stops the commit with the located error
    in the spec that uses the profile. (The tests above run the same entry point in-process.)"""
    pre_commit = shutil.which("pre-commit") or pytest.skip("pre-commit is not installed (dev extra)")
    repo = _policy_layout(tmp_path)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
           "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}  # fmt: skip
    env.pop("PYTHONPATH", None)  # the hooks run in pre-commit's own environment

    def run_hook(hook: str) -> subprocess.CompletedProcess[str]:
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        return subprocess.run([pre_commit, "try-repo", str(ROOT), hook, "--all-files"], cwd=repo, env=env, capture_output=True, text=True)

    profile = repo / "systems" / "churn" / "targets" / "aws-prod.yaml"
    profile.write_text(profile.read_text().replace("max_replicas: 16", "max_replicas: 4"))
    failed = run_hook("mlcompile-validate-profiles")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(
        r"systems/churn/mlcompile.yaml:\d+:\d+: error: deployment.online.replicas.max: 6 replicas exceed policy max_replicas of profile aws-prod", failed.stdout
    )
