"""One mlcompile comment per pull request, on each platform: found by its marker among
everyone else's comments (across pages), created, edited in place, deleted when nothing
changed; cut below GitHub's size limit with a note; never posted for an untrusted request.
Run against local stand-ins of the GitHub, GitLab and Azure DevOps APIs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from github_api import GitHubStandIn  # noqa: E402
from review_apis import AzureDevOpsStandIn, GitLabStandIn  # noqa: E402

from mlcompile.ci.comment import LIMIT, MARKER, main  # noqa: E402


def post(tmp_path: Path, platform: str, *args: str, body: str | None = None) -> int:
    if body is not None:
        (tmp_path / "body.md").write_text(body)
        args = (*args, "--body-file", str(tmp_path / "body.md"))
    return main([platform, "--pull", "7", *args])


def test_github_a_diff_too_long_for_a_comment_is_cut_at_a_line_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with GitHubStandIn("acme/ml", token="t") as api:
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/ml")
        monkeypatch.setenv("GITHUB_TOKEN", "t")
        for n in range(150):  # the marked comment is on the second page
            api.add(7, f"review comment {n}")
        api.add(7, f"{MARKER}\nan earlier diff")
        huge = f"{MARKER}\n## diff\n```diff\n" + "".join(f"+ line {n} of a very long file diff\n" for n in range(20_000)) + "```\n"
        assert post(tmp_path, "github", body=huge) == 0
        (ours,) = [c for c in api.on(7) if c["body"].startswith(MARKER)]
        assert len(api.on(7)) == 151 and ours["id"] == 1151  # updated, not added
        assert len(ours["body"]) < LIMIT and ours["body"].count("```") % 2 == 0
        assert ours["body"].rstrip().endswith("The full diff is in this job's artifacts._")
        assert "\n+ line 1000 of a very long file diff\n" in ours["body"]


def test_github_a_quoted_marker_is_not_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with GitHubStandIn("acme/ml", token="t") as api:
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/ml")
        monkeypatch.setenv("GITHUB_TOKEN", "t")
        api.add(7, f"> {MARKER}\n> why does it say this?")
        assert post(tmp_path, "github", "--delete") == 0
        assert len(api.on(7)) == 1


def test_gitlab_merge_request_note_is_created_updated_and_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with GitLabStandIn("42", token="glpat-review") as api:
        monkeypatch.setenv("CI_API_V4_URL", f"{api.url}/api/v4")
        monkeypatch.setenv("CI_PROJECT_ID", "42")
        monkeypatch.delenv("MLCOMPILE_GITLAB_TOKEN", raising=False)
        assert post(tmp_path, "gitlab", body="canary 10% → 25%") == 2  # no token: CI_JOB_TOKEN cannot write notes
        monkeypatch.setenv("MLCOMPILE_GITLAB_TOKEN", "glpat-review")
        api.add(7, f"{MARKER}\nmentioned by a system note", system=True)
        assert post(tmp_path, "gitlab", body="canary 10% → 25%") == 0
        assert post(tmp_path, "gitlab", body="canary 10% → 50%") == 0
        ours = [n for n in api.on(7) if not n["system"]]
        assert [n["body"] for n in ours] == [f"{MARKER}\ncanary 10% → 50%"]
        assert post(tmp_path, "gitlab", "--delete") == 0
        assert [n["system"] for n in api.on(7)] == [True]


def test_azure_devops_thread_comment_is_created_updated_and_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with AzureDevOpsStandIn("ml", "repo-id", token="ado-token") as api:
        monkeypatch.setenv("SYSTEM_COLLECTIONURI", f"{api.url}/acme/")
        monkeypatch.setenv("SYSTEM_TEAMPROJECT", "ml")
        monkeypatch.setenv("BUILD_REPOSITORY_ID", "repo-id")
        monkeypatch.setenv("SYSTEM_ACCESSTOKEN", "ado-token")
        api.add(7, "please add a test")
        assert post(tmp_path, "azure-devops", body="canary 10% → 25%") == 0
        assert post(tmp_path, "azure-devops", body="canary 10% → 50%") == 0
        assert api.live_comments(7) == ["please add a test", f"{MARKER}\ncanary 10% → 50%"]
        assert post(tmp_path, "azure-devops", "--delete") == 0
        assert api.live_comments(7) == ["please add a test"]
        assert post(tmp_path, "azure-devops", body="canary 10% → 30%") == 0  # a deleted comment is not edited back to life
        assert api.live_comments(7) == ["please add a test", f"{MARKER}\ncanary 10% → 30%"]


def test_a_saved_comment_with_a_forged_pull_request_number_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "comment"
    saved.mkdir()
    (saved / "pull").write_text("7 --delete\n")
    (saved / "body.md").write_text("hello")
    assert main(["github", "--from-dir", str(saved), "--expect-head-sha", "abc"]) == 2
    assert "not a pull request number: '7 --delete'" in capsys.readouterr().err


def test_outside_a_ci_job_the_missing_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    assert post(tmp_path, "github", "--delete") == 2
    assert capsys.readouterr().err == "error: GITHUB_REPOSITORY is not set (this runs inside a CI job)\n"
