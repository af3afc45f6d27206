"""The GitHub Action (action.yml) runs as shipped: its shell steps, taken from action.yml with
their `env:` and `if:` evaluated the way the runner does, run with bash in a clone of a local
bare repository holding examples/churn and targets/, against a local stand-in of GitHub's
issue-comments API. The steps that are other actions (setup-python, cache, the cloud logins,
upload/download-artifact) are GitHub's; the install step is replaced by this test's
environment, where mlcompile is already importable.

A pull request's life: a change is commented; a later push that changes nothing deletes the
comment; a validation error replaces it with the located error; an internal error (exit 3)
fails the job and leaves the comment alone; a fork's pull request saves its comment for the
workflow_run job, which posts it only for the commit that was reviewed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
from github_api import GitHubStandIn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
MARKER = "<!-- mlcompile diff -->"
REPOSITORY = "acme/ml-systems"
SPEC = "examples/churn/mlcompile.yaml"
GIT_ENV = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com", "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_NAME = re.compile(r"\b(?:inputs|github|runner|steps)(?:\.[\w-]+)+")


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value


def _substitute(text: str, context: dict[str, Any]) -> str:
    return _EXPRESSION.sub(lambda m: str(_lookup(context, m[1])), str(text))


def _condition(expression: str, context: dict[str, Any]) -> bool:
    """The few operators action.yml's `if:` uses: ==, !=, &&, ||, !, always()."""
    python = _NAME.sub(lambda m: repr(_lookup(context, m[0])), expression)
    python = python.replace("&&", " and ").replace("||", " or ").replace("always()", "True")
    python = re.sub(r"!(?!=)", " not ", python)
    return bool(eval(python, {"__builtins__": {}}))  # noqa: S307 - the expressions of our own action.yml


class Runner:
    """Runs action.yml's steps as GitHub's runner would for one event: `run:` steps with bash;
    upload-artifact / download-artifact by copying folders to and from `artifacts/`; the other
    `uses:` steps (GitHub's and the clouds' actions) and the install step are not run. After a
    failed step, only steps marked `always()` run."""

    def __init__(self, tmp: Path, api: GitHubStandIn, workspace: Path) -> None:
        self.tmp, self.api, self.workspace = tmp, api, workspace
        self.artifacts = tmp / "artifacts"

    def run(self, inputs: dict[str, str], github: dict[str, Any], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        runner_temp = self.tmp / "runner-temp"
        shutil.rmtree(runner_temp, ignore_errors=True)
        runner_temp.mkdir()
        outputs = self.tmp / "github-output"
        outputs.write_text("")
        values = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
        context: dict[str, Any] = {"github": {"token": "ghs_stand_in", "repository": REPOSITORY, **github}, "runner": {"temp": str(runner_temp)}}
        context["inputs"] = {name: _substitute(value, context) for name, value in {**values, **inputs}.items()}
        context["steps"] = {"python": {"outputs": {"python-version": "3.11.7"}}}
        log, status = "", 0
        for step in ACTION["runs"]["steps"]:
            condition = step.get("if", "true")
            if (status and "always()" not in condition) or not _condition(condition, context):
                continue
            action, settings = step.get("uses", "").split("@")[0], {k: _substitute(v, context) for k, v in step.get("with", {}).items()}
            if action == "actions/upload-artifact" and Path(settings["path"]).is_dir():
                shutil.copytree(settings["path"], self.artifacts / settings["name"], dirs_exist_ok=True)
            elif action == "actions/download-artifact" and (self.artifacts / settings["name"]).is_dir():
                shutil.copytree(self.artifacts / settings["name"], settings["path"], dirs_exist_ok=True)
            if "run" not in step or "install.sh" in step["run"]:
                continue
            env = {**os.environ, **GIT_ENV, **(extra_env or {})}
            env.update(GITHUB_ACTION_PATH=str(ROOT), GITHUB_WORKSPACE=str(self.workspace), GITHUB_REPOSITORY=REPOSITORY,
                       GITHUB_API_URL=self.api.url, GITHUB_OUTPUT=str(outputs), GITHUB_ENV=str(self.tmp / "github-env"), GITHUB_STEP_SUMMARY=str(self.tmp / "summary.md"),
                       GITHUB_PATH=str(self.tmp / "github-path"), RUNNER_TEMP=str(runner_temp), RUNNER_OS="Linux", GITHUB_ACTIONS="true")  # fmt: skip
            env.update({name: _substitute(value, context) for name, value in step.get("env", {}).items()})
            done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=self.workspace, env=env, capture_output=True, text=True, timeout=300)
            log += done.stdout + done.stderr
            status = status or done.returncode
        self.outputs = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
        return subprocess.CompletedProcess(["action.yml"], status, log, "")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def pull_request(tmp_path: Path) -> Any:
    """A bare `origin` whose main holds examples/churn (spec only) and targets/, a
    developer clone on branch `canary`, and the runner's full-history checkout of it."""
    origin, dev, checkout = tmp_path / "origin.git", tmp_path / "dev", tmp_path / "checkout"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    (dev / "examples" / "churn").mkdir(parents=True)
    shutil.copy(ROOT / SPEC, dev / SPEC)
    shutil.copytree(ROOT / "targets", dev / "targets")
    git(dev, "checkout", "-q", "-b", "main")
    git(dev, "add", "-A")
    git(dev, "commit", "-qm", "churn")
    git(dev, "push", "-q", "origin", "main")
    git(dev, "checkout", "-q", "-b", "canary")
    api = GitHubStandIn(REPOSITORY, token="ghs_stand_in")
    with api:

        def push(edit: Any, message: str) -> str:
            spec = dev / SPEC
            spec.write_text(edit(spec.read_text()))
            git(dev, "commit", "-qam", message, "--allow-empty")
            git(dev, "push", "-q", "-f", "origin", "canary")
            if not checkout.exists():
                git(tmp_path, "clone", "-q", str(origin), str(checkout))
            git(checkout, "fetch", "-q", "origin")
            git(checkout, "checkout", "-q", "-B", "canary", "origin/canary")
            return git(checkout, "rev-parse", "HEAD").strip()

        yield api, push, Runner(tmp_path, api, checkout)


def review(runner: Runner, head_repo: str = REPOSITORY, **env: str) -> subprocess.CompletedProcess[str]:
    inputs = {"command": "review", "specs": SPEC, "targets": "targets/local.yaml"}  # one profile keeps the test quick
    event = {"base_ref": "main", "event": {"pull_request": {"number": 7, "head": {"repo": {"full_name": head_repo}}}}}
    return runner.run(inputs, event, env)


def canary(percent: int) -> Any:
    return lambda text: re.sub(r"canary_percent: \d+", f"canary_percent: {percent}", text)


def test_a_pull_request_comment_follows_the_change_and_goes_when_nothing_changes(pull_request: Any) -> None:
    api, push, runner = pull_request
    api.add(7, "LGTM, but let's see what mlcompile says")
    push(canary(25), "canary 10 → 25")
    done = review(runner)
    assert done.returncode == 0, done.stdout
    assert runner.outputs["changed"] == "true"
    human, ours = api.on(7)
    assert human["body"].startswith("LGTM") and ours["body"].startswith(MARKER)
    assert "canary 10% → 25%" in ours["body"]
    assert "canary 10% → 25%" in (runner.tmp / "summary.md").read_text()  # also on the run's summary page

    push(canary(50), "canary 25 → 50")
    done = review(runner)
    assert done.returncode == 0, done.stdout
    (updated,) = [c for c in api.on(7) if c["body"].startswith(MARKER)]
    assert updated["id"] == ours["id"] and "canary 10% → 50%" in updated["body"]  # edited in place, not a second comment

    push(canary(10), "back to 10%: nothing changes")
    done = review(runner)
    assert done.returncode == 0, done.stdout
    assert runner.outputs["changed"] == "false"
    assert [c["body"] for c in api.on(7)] == [human["body"]]  # ours deleted, the human's kept
    assert ("DELETE", f"/repos/{REPOSITORY}/issues/comments/{ours['id']}") in api.requests


def test_a_validation_error_is_posted_on_the_pull_request_and_annotated_on_the_line(pull_request: Any) -> None:
    api, push, runner = pull_request
    push(canary(25), "canary 25")
    assert review(runner).returncode == 0
    push(lambda text: text.replace("approval: manual", "approval: manul"), "typo")
    done = review(runner)
    assert done.returncode == 2
    assert re.search(rf"^::error file={re.escape(SPEC)},line=\d+,col=\d+,title=mlcompile::registry.approval: 'manul' is not one of", done.stdout, re.M)
    (comment,) = api.on(7)  # the diff comment became the error report
    assert comment["body"].startswith(MARKER) and "the specs or profiles have errors" in comment["body"]
    assert re.search(rf"{re.escape(SPEC)}:\d+:\d+: error: registry.approval: &#x27;manul&#x27; is not one of", comment["body"])


def test_an_internal_error_fails_the_job_and_is_never_taken_for_no_changes(pull_request: Any, tmp_path: Path) -> None:
    api, push, runner = pull_request
    push(canary(25), "canary 25")
    assert review(runner).returncode == 0
    (before,) = api.on(7)
    # a bug inside mlcompile diff: mlcompile reports it as an internal error, exit 3
    bug = tmp_path / "bug"
    bug.mkdir()
    (bug / "sitecustomize.py").write_text(
        "import mlcompile.diff.systems\ndef diff_builds(*args, **kwargs):\n    raise RuntimeError('a bug')\nmlcompile.diff.systems.diff_builds = diff_builds\n"
    )
    push(canary(30), "canary 30")
    done = review(runner, PYTHONPATH=os.pathsep.join([str(bug), os.environ.get("PYTHONPATH", "")]))
    assert done.returncode == 3
    assert "internal error: RuntimeError: a bug" in done.stdout
    assert "::error title=mlcompile::mlcompile diff stopped with exit status 3" in done.stdout
    assert "changed" not in runner.outputs
    assert api.on(7) == [before]  # not deleted as if nothing changed


def test_a_fork_pull_request_is_commented_by_the_workflow_run_job_for_the_reviewed_commit(pull_request: Any) -> None:
    api, push, runner = pull_request
    head = push(canary(25), "canary 25")
    done = review(runner, head_repo="someone/ml-systems")  # its token cannot write to this repository
    assert done.returncode == 0, done.stdout
    assert api.requests == []
    saved = runner.artifacts / "mlcompile-review" / "comment"
    assert (saved / "pull").read_text() == "7\n" and (saved / "body.md").read_text().startswith(MARKER)

    # the workflow_run job of the base repository downloads the artifact and posts it, but only
    # while the pull request's head is the commit that was reviewed (the artifact is untrusted)
    api.heads[7] = head
    refused = runner.run({"command": "comment"}, {"event": {"workflow_run": {"head_sha": "0" * 40, "id": 1}}})
    assert refused.returncode == 2 and "is not at commit" in refused.stdout and api.on(7) == []
    posted = runner.run({"command": "comment"}, {"event": {"workflow_run": {"head_sha": head, "id": 1}}})
    assert posted.returncode == 0, posted.stdout
    (comment,) = api.on(7)
    assert "canary 10% → 25%" in comment["body"]


@pytest.mark.slow
def test_deploy_shows_the_plan_then_applies_it(pull_request: Any) -> None:
    from kfp_api import KfpStandIn

    api, push, runner = pull_request
    push(lambda text: text, "merged")
    with KfpStandIn() as kfp:
        profile = runner.workspace / "targets" / "kfp-gke.yaml"
        profile.write_text(re.sub(r"host: \S+", f"host: {kfp.host}", profile.read_text()))
        done = runner.run({"command": "deploy", "specs": SPEC, "targets": "targets/kfp-gke.yaml"}, {"event_name": "push"})
        assert done.returncode == 0, done.stdout
        plan, applied = done.stdout.split("::endgroup::")
        assert "would create pipeline churn-prediction-training" in plan
        assert "create pipeline churn-prediction-training" in applied and kfp.uploads
    assert api.requests == []  # deploying comments nothing


@pytest.mark.slow
def test_deploy_signs_in_to_kubeflow_pipelines_with_the_kfp_token_input(pull_request: Any) -> None:
    """A kube config (gke-cluster, kubeconfig) does not sign in to the KFP API: deploy sends
    the token given as the `kfp-token` input (a secret) as its bearer token."""
    from kfp_api import KfpStandIn

    api, push, runner = pull_request
    push(lambda text: text, "merged")
    with KfpStandIn() as kfp:
        profile = runner.workspace / "targets" / "kfp-gke.yaml"
        profile.write_text(re.sub(r"host: \S+", f"host: {kfp.host}", profile.read_text()))
        inputs = {"command": "deploy", "specs": SPEC, "targets": "targets/kfp-gke.yaml", "dry-run": "true", "kfp-token": "kfp-t0ken"}
        done = runner.run(inputs, {"event_name": "push"}, {"MLCOMPILE_KFP_TOKEN": ""})
        assert done.returncode == 0, done.stdout
        assert kfp.last_headers.get("Authorization") == "Bearer kfp-t0ken"


def test_several_specs_are_one_report_in_one_comment(pull_request: Any) -> None:
    """A glob of specs is diffed as one report, so the comment is sized as a whole (below
    GitHub's limit, every <details> closed) instead of reports appended one after another."""
    api, push, runner = pull_request
    dev, other = runner.tmp / "dev", "examples/churn-eu/mlcompile.yaml"
    git(dev, "checkout", "-q", "main")
    (dev / other).parent.mkdir(parents=True)
    (dev / other).write_text((dev / SPEC).read_text().replace("name: churn-prediction", "name: churn-eu", 1))
    git(dev, "add", "-A")
    git(dev, "commit", "-qm", "churn-eu")
    git(dev, "push", "-q", "origin", "main")
    git(dev, "checkout", "-q", "canary")
    git(dev, "merge", "-q", "main")
    (dev / other).write_text(canary(25)((dev / other).read_text()))
    push(canary(25), "canary 10 → 25 in both systems")
    done = runner.run(
        {"command": "review", "specs": "examples/*/mlcompile.yaml", "targets": "targets/local.yaml"},
        {"base_ref": "main", "event": {"pull_request": {"number": 7, "head": {"repo": {"full_name": REPOSITORY}}}}},
    )
    assert done.returncode == 0, done.stdout
    (comment,) = api.on(7)
    assert comment["body"].count(MARKER) == 1
    assert "**2 of 2 profiles of 2 systems changed**" in comment["body"]
    assert "`churn-eu/local`" in comment["body"] and "`churn-prediction/local`" in comment["body"]
