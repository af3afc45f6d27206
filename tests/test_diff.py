"""`mlcompile diff` on real git repositories: what a change to a spec or profile changes in
each profile's build, with impact labels and Terraform-style exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from mlcompile.cli import main
from mlcompile.schema import json_schema

FIXTURE = Path(__file__).parent / "fixtures" / "system"
GOLDEN = Path(__file__).parent / "golden" / "diff"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    git(root, "init", "-q")
    git(root, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "add", "-A")
    git(root, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "base")
    monkeypatch.chdir(root)
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def diff(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["diff", "mlcompile.yaml", "--target", "targets/local.yaml", *args])
    return result.exit_code, result.stdout if result.exit_code != 2 else result.output


def test_an_unchanged_spec_has_no_changes_and_exit_code_0(repo: Path) -> None:
    code, output = diff("--exit-code")
    assert code == 0
    assert "local (local): no changes" in output


def test_a_canary_change_is_reported_in_serving_terms_with_exit_code_1(repo: Path) -> None:
    edit(repo / "mlcompile.yaml", "canary_percent: 10", "canary_percent: 25")
    code, output = diff("--exit-code")
    assert code == 1
    assert "local (local): 1 resource, 1 file changed — changes serving" in output
    assert "endpoint churn: canary 10% → 25%" in output
    # the build's file, compared as data: the one key that moved, not a line diff
    assert "  file plan.json: changed\n    $.online.canary_percent: 10 → 25\n" in output


def test_without_exit_code_changes_still_exit_0(repo: Path) -> None:
    edit(repo / "mlcompile.yaml", "canary_percent: 10", "canary_percent: 25")
    assert diff()[0] == 0


def test_an_accelerator_change_retrains_and_changes_cost_class(repo: Path) -> None:
    edit(repo / "mlcompile.yaml", "accelerator: {type: nvidia-t4, count: 1}", "accelerator: {type: nvidia-l4, count: 2}")
    code, output = diff("--exit-code", "--format", "json")
    assert code == 1
    report = json.loads(output)
    jsonschema.Draft202012Validator(json_schema("diff")).validate(report)
    (profile,) = report["profiles"]
    assert profile["impacts"] == ["retrains the model", "changes cost class"]
    (resource,) = [r for r in profile["resources"] if r["resource"] == "step churn-prediction-training/tune"]
    assert resource["fields"] == [{"field": "accelerator", "old": "1× nvidia-t4", "new": "2× nvidia-l4"}]
    assert profile["changed_steps"] == ["churn-prediction-training/tune"]


def test_a_schedule_change_is_labelled_as_such(repo: Path) -> None:
    edit(repo / "mlcompile.yaml", 'schedule: "0 2 * * 0"', 'schedule: "30 1 * * 1"')
    code, output = diff("--exit-code")
    assert code == 1
    assert "changes a schedule" in output
    assert "schedule churn-prediction-retraining: cron 0 2 * * 0 → 30 1 * * 1" in output


def test_a_comment_or_formatting_edit_of_the_spec_has_no_changes(repo: Path) -> None:
    spec = repo / "mlcompile.yaml"
    text = spec.read_text()
    # lines added above everything: every source location of the plan moves down; the spec's
    # sha256 (lineage, in every file) changes — neither is a change to review
    spec.write_text("# a reviewer's note\n\n" + text.replace("labels: {team: growth}", "labels:\n    team: 'growth'   # who to ask"))
    code, output = diff("--exit-code")
    assert code == 0, output
    assert output.startswith("mlcompile diff against HEAD: No changes")


def test_a_comment_in_a_profile_has_no_changes(repo: Path) -> None:
    profile = repo / "targets" / "local.yaml"
    profile.write_text("# owned by the platform team\n" + profile.read_text())
    assert diff("--exit-code")[0] == 0


def test_a_label_edit_touches_only_metadata(repo: Path) -> None:
    edit(repo / "mlcompile.yaml", "labels: {team: growth}", "labels: {team: growth, tier: gold}")
    code, output = diff("--exit-code")
    assert code == 1, output
    assert "touches only metadata" in output
    assert "retrains" not in output and "serving" not in output


def test_markdown_is_a_pull_request_comment_with_a_highlighted_dag(repo: Path, update_golden: bool) -> None:
    edit(repo / "mlcompile.yaml", "accelerator: {type: nvidia-t4, count: 1}", "accelerator: {type: nvidia-l4, count: 2}")
    edit(repo / "mlcompile.yaml", "canary_percent: 10", "canary_percent: 25")
    code, output = diff("--format", "markdown")
    assert code == 0
    golden = GOLDEN / "accelerator-and-canary.md"
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(output)
    assert output == golden.read_text(), "regenerate (then review): pytest tests/test_diff.py --update-golden"
    assert "class tune changed" in output


def test_base_dir_compares_with_an_earlier_build(repo: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["build", "mlcompile.yaml", "-t", "targets/local.yaml", "-o", "before", "--git-commit", "none"]).exit_code == 0
    edit(repo / "mlcompile.yaml", "threshold: 0.2", "threshold: 0.1")
    code, output = diff("--base-dir", "before", "--exit-code")
    assert code == 1
    assert "monitoring: drift psi > 0.2 → psi > 0.1" in output


def test_an_invalid_working_tree_is_a_located_error_exit_2(repo: Path) -> None:
    edit(repo / "mlcompile.yaml", "source: transactions\n      ttl", "source: transaction\n      ttl")
    code, output = diff("--exit-code")
    assert code == 2
    assert "mlcompile.yaml:" in output and "unknown source 'transaction'" in output


def test_an_unknown_base_revision_is_a_user_error(repo: Path) -> None:
    code, output = diff("--base", "no-such-ref")
    assert code == 2 and "no such git revision" in output


def test_a_spec_added_since_the_base_shows_everything_as_added(repo: Path) -> None:
    git(repo, "rm", "-q", "--cached", "mlcompile.yaml")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "drop spec")
    code, output = diff("--exit-code")
    assert code == 1
    assert "file plan.json: added" in output


# ------------------------------------------------------------------ every installed target

from mlcompile.targets.registry import target_names  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.stem for p in (REPO / "targets").glob("*.yaml"))


def _platform(profile: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in (REPO / "targets" / f"{profile}.yaml").read_text().splitlines() if line.startswith("platform:"))


@pytest.fixture
def example_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The churn example and the repository's profiles, committed in a fresh git repository."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "churn", root / "churn", ignore=shutil.ignore_patterns("data", ".mlcompile", "scores"))
    shutil.copytree(REPO / "targets", root / "targets")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "base")
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("profile", PROFILES)
def test_every_target_reports_a_serving_and_schedule_change_in_its_own_files(example_repo: Path, profile: str) -> None:
    if _platform(profile) not in target_names():
        pytest.skip(f"target {_platform(profile)} is not installed")
    args = ["diff", "churn/mlcompile.yaml", "--target", f"targets/{profile}.yaml", "--exit-code"]
    unchanged = CliRunner().invoke(main, args)
    assert unchanged.exit_code == 0, unchanged.output
    edit(example_repo / "churn" / "mlcompile.yaml", "canary_percent: 10}", "canary_percent: 30}")
    edit(example_repo / "churn" / "mlcompile.yaml", 'schedule: "0 2 * * 1"', 'schedule: "0 4 * * 1"')
    changed = CliRunner().invoke(main, [*args, "--format", "json"])
    assert changed.exit_code == 1, changed.output
    (report,) = json.loads(changed.stdout)["profiles"]
    assert report["impacts"][:1] == ["changes serving"] and "changes a schedule" in report["impacts"]
    resources = {r["resource"]: r["fields"] for r in report["resources"]}
    assert resources["endpoint churn-scorer"] == [{"field": "canary", "old": "10%", "new": "30%"}]
    assert resources["schedule churn-prediction-retraining"] == [{"field": "cron", "old": "0 2 * * 1", "new": "0 4 * * 1"}]
    changed_files = [f for f in report["files"] if f["change"] == "changed"]
    assert changed_files, "the platform's own files must show the change"
    moved = [c for f in changed_files for c in f["changes"]]
    assert any(c["new"] in (30, 70, "0 4 * * 1") or "30%" in str(c["new"]) for c in moved), moved
    assert all(f["unified"] == "" for f in changed_files if f["path"].endswith((".json", ".yaml", ".yml"))), "data files diff by key path"


def test_base_dir_of_a_cloud_build_compares_its_files(example_repo: Path) -> None:
    if _platform("gcp-prod") not in target_names():
        pytest.skip("target vertex is not installed")
    runner = CliRunner()
    built = runner.invoke(main, ["build", "churn/mlcompile.yaml", "-t", "targets/gcp-prod.yaml", "-o", "before", "--git-commit", "none"])
    assert built.exit_code == 0, built.output
    args = ["diff", "churn/mlcompile.yaml", "--target", "targets/gcp-prod.yaml", "--base-dir", "before", "--exit-code"]
    same = runner.invoke(main, args)
    assert same.exit_code == 0 and "gcp-prod (vertex): no changes" in same.stdout
    edit(example_repo / "churn" / "mlcompile.yaml", "canary_percent: 10}", "canary_percent: 30}")
    changed = runner.invoke(main, args)
    assert changed.exit_code == 1
    assert "file vertex/deploy-model.json: changed" in changed.stdout or "deploy-model" in changed.stdout


def test_a_trainer_parameter_change_names_that_parameter_not_the_whole_mapping(example_repo: Path) -> None:
    edit(example_repo / "churn" / "mlcompile.yaml", "max_iter: 300", "max_iter: 400")
    changed = CliRunner().invoke(main, ["diff", "churn/mlcompile.yaml", "--target", "targets/local.yaml", "--exit-code", "--format", "json"])
    assert changed.exit_code == 1, changed.output
    (report,) = json.loads(changed.stdout)["profiles"]
    resources = {r["resource"]: r["fields"] for r in report["resources"]}
    assert resources["step churn-prediction-training/train"] == [{"field": "params.estimator_params.max_iter", "old": 300, "new": 400}]


def test_a_long_string_that_changed_late_shows_where_it_differs() -> None:
    from mlcompile.diff.structural import KeyChange

    head = "python -m mlcompile.runtime train --config " + "x" * 300
    line = KeyChange("$.jobs.train.component.command", head + '"max_iter":300}', head + '"max_iter":400}').render()
    old, new = line.split(": ", 1)[1].split(" → ")
    assert old != new, line  # a cut that keeps only the common start would show the same text twice
    assert '"max_iter\\":300}' in old and '"max_iter\\":400}' in new
    assert len(line) < 500
