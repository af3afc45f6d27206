"""`mlcompile diff` as a pull-request review: small and semantic (lineage is not a change,
data files compare by key path), a comment that fits GitHub's limit with the full diff as an
artifact, several systems at once without rebuilding the unchanged ones, and a --base-dir
that reads nothing outside the build it is given."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from mlcompile.cli import main
from mlcompile.diff.lineage import LineageValues, pair_renamed, without_lineage
from mlcompile.diff.render import COMMENT_LIMIT, to_markdown
from mlcompile.diff.structural import compare_files
from mlcompile.targets.registry import target_names

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "system"
CLOUD = ("kubeflow", "vertex", "sagemaker", "azureml")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args], cwd=repo, check=True, capture_output=True)


def commit_all(root: Path) -> None:
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout if result.exit_code != 2 else result.output


@pytest.fixture
def churn_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch repository holding examples/churn and the repository's targets/."""
    if not set(CLOUD) <= set(target_names()):
        pytest.skip("every cloud target is needed")
    root = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "churn", root / "examples" / "churn", ignore=shutil.ignore_patterns("data", ".mlcompile", "scores"))
    shutil.copytree(REPO / "targets", root / "targets")
    commit_all(root)
    monkeypatch.chdir(root)
    return root


SPEC = "examples/churn/mlcompile.yaml"


def test_a_canary_change_is_a_short_comment_naming_it_on_every_platform(churn_repo: Path) -> None:
    spec = churn_repo / SPEC
    spec.write_text(spec.read_text().replace("canary_percent: 10}", "canary_percent: 25}"))
    code, comment = run("diff", SPEC, "--target", "targets/", "--format", "markdown", "--exit-code")
    assert code == 1
    assert len(comment) < COMMENT_LIMIT
    assert comment.count("`canary 10% → 25%`") == 5, "one line per profile"
    # the platforms' own files, key by key: no lineage hash, no one-line blob
    assert "$.spec.predictor.canaryTrafficPercent: 10 → 25" in comment
    # Azure ML: the deploy pipeline's deploy-online step carries the rollout (the endpoint file has no traffic before a version is approved)
    azure = comment.split("<code>azure-prod</code>", 1)[1].split("</details>", 1)[0]
    assert "pipelines/churn-prediction-deploy.yml" in azure and '\\"canary_percent\\":10' in azure and '\\"canary_percent\\":25' in azure
    assert "sha256" not in comment

    code, output = run("diff", SPEC, "--target", "targets/", "--format", "json")
    assert code == 0
    schema = json.loads((REPO / "schemas" / "diff-v1.schema.json").read_text())
    report = json.loads(output)
    jsonschema.Draft202012Validator(schema).validate(report)
    (kfp,) = [p for p in report["profiles"] if p["profile"] == "kfp-gke"]
    (service,) = [f for f in kfp["files"] if f["path"] == "serving/inference-service.yaml"]
    assert service["changes"] == [{"path": "$.spec.predictor.canaryTrafficPercent", "old": 10, "new": 25, "change": "changed"}]


def test_a_comment_only_edit_of_spec_and_profile_has_no_changes(churn_repo: Path) -> None:
    spec = churn_repo / SPEC
    spec.write_text("# reviewed by the platform team\n" + spec.read_text().replace("canary_percent: 10}", "canary_percent: 10}  # ten first"))
    profile = churn_repo / "targets" / "aws-prod.yaml"
    profile.write_text(profile.read_text() + "# a note\n")
    code, comment = run("diff", SPEC, "--target", "targets/", "--format", "markdown", "--exit-code")
    assert code == 0, comment
    assert "**No changes**" in comment
    assert len(comment.splitlines()) <= 5, "one screen"


def test_a_comment_over_the_limit_keeps_its_summary_and_points_to_the_artifact(churn_repo: Path) -> None:
    spec = churn_repo / SPEC
    # two features renamed: dozens of key-path changes
    spec.write_text(spec.read_text().replace("orders_30d", "orders_last_30_days").replace("spend_30d", "spend_last_30_days"))
    args = ("diff", SPEC, "--target", "targets/local.yaml", "--format", "markdown")
    code, full = run(*args, "--artifact", "diff.txt")
    assert code == 0
    artifact = (churn_repo / "diff.txt").read_text()
    from mlcompile.diff.systems import DiffRequest, diff_specs

    report, plans = diff_specs(DiffRequest([SPEC], ["targets/local.yaml"]))
    limit = len(full) // 2
    comment = to_markdown(report, plans, artifact="diff.txt", limit=limit)
    assert len(comment) < limit
    assert comment.startswith("<!-- mlcompile diff -->") and "| `local` | local |" in comment
    assert "- **feature view customer_activity**: `feature orders_30d int64 → (none)" in comment, "resource changes come before any file"
    assert comment.rstrip().endswith("the full diff is in `diff.txt`.</sub>")
    cut_lines = [line for line in full.splitlines() if line.startswith("$.")]
    assert all(line.strip() in artifact for line in cut_lines), "the artifact has every change the comment shows, and more"
    assert artifact.count("\n") > comment.count("\n")


def test_a_change_to_hundreds_of_systems_still_fits_one_comment(churn_repo: Path) -> None:
    from dataclasses import replace

    from mlcompile.diff.engine import DiffReport
    from mlcompile.diff.systems import DiffRequest, diff_specs

    spec = churn_repo / SPEC
    spec.write_text(spec.read_text().replace("orders_30d", "orders_last_30_days").replace("canary_percent: 10}", "canary_percent: 25}"))
    report, _ = diff_specs(DiffRequest([SPEC], ["targets/local.yaml"]))
    (local,) = report.profiles
    # the same real change in 300 systems (a profile every system uses changed)
    many = DiffReport(report.base, True, tuple(replace(local, system=f"system-{i:03d}") for i in range(300)))
    comment = to_markdown(many, artifact="diff-full.txt")
    assert len(comment) < COMMENT_LIMIT
    assert "| `system-000/local` | local |" in comment and "more changed profiles" in comment
    assert comment.count("`canary 10% → 25%`") > 10, "resource changes before any file"
    assert "Left out to stay under 60,000 characters" in comment and "the full diff is in `diff-full.txt`" in comment


# ------------------------------------------------------------------ several systems


@pytest.fixture
def monorepo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "mono"
    for name in ("billing", "churn", "fraud"):
        text = (FIXTURE / "mlcompile.yaml").read_text().replace("name: churn-prediction", f"name: {name}-prediction")
        (root / "systems" / name).mkdir(parents=True)
        (root / "systems" / name / "mlcompile.yaml").write_text(text)
    shutil.copytree(FIXTURE / "targets", root / "targets")
    commit_all(root)
    monkeypatch.chdir(root)
    return root


def test_several_specs_build_only_the_changed_system(monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlcompile.diff.systems as systems

    built: list[str] = []
    original = systems.build_working_tree
    monkeypatch.setattr(systems, "build_working_tree", lambda spec, *a, **k: built.append(spec) or original(spec, *a, **k))
    spec = monorepo / "systems" / "fraud" / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("canary_percent: 10", "canary_percent: 25"))
    code, output = run("diff", "systems/*/mlcompile.yaml", "--target", "targets/local.yaml", "--exit-code")
    assert code == 1
    assert built == ["systems/fraud/mlcompile.yaml"]
    assert output.startswith("mlcompile diff against HEAD: 1 of 3 profiles of 3 systems changed")
    assert "fraud-prediction/local (local): 1 resource, 1 file changed" in output
    assert "unchanged: billing-prediction/local, churn-prediction/local" in output


def test_several_unchanged_specs_build_nothing_and_fit_one_screen(monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlcompile.diff.systems as systems

    monkeypatch.setattr(systems, "build_working_tree", lambda *a, **k: pytest.fail("an unchanged system was built"))
    code, output = run("diff", "systems/billing/mlcompile.yaml", "systems/churn/mlcompile.yaml", "systems/fraud/mlcompile.yaml",
                       "--target", "targets/local.yaml", "--exit-code", "--format", "markdown")  # fmt: skip
    assert code == 0
    assert "**No changes** in any build (3 profiles of 3 systems compared" in output


def test_several_specs_against_a_base_dir_of_several_systems(monorepo: Path) -> None:
    build = ["build", "systems/*/mlcompile.yaml", "--target", "targets/local.yaml", "--git-commit", "none", "--out", "base"]
    assert run(*build)[0] == 0
    spec = monorepo / "systems" / "churn" / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("canary_percent: 10", "canary_percent: 25"))
    (monorepo / "systems" / "ads").mkdir()
    (monorepo / "systems" / "ads" / "mlcompile.yaml").write_text(spec.read_text().replace("name: churn-prediction", "name: ads-prediction"))
    code, output = run("diff", "systems/*/mlcompile.yaml", "--target", "targets/local.yaml", "--base-dir", "base", "--exit-code")
    assert code == 1
    assert "churn-prediction/local (local): 1 resource, 1 file changed — changes serving" in output, "a local build keeps its plan"
    assert "  file plan.json: changed\n    $.online.canary_percent: 10 → 25\n" in output
    assert "ads-prediction/local (local): 26 resources, 4 files changed" in output and "file plan.json: added" in output
    assert "unchanged: billing-prediction/local, fraud-prediction/local" in output


def test_build_with_a_cache_does_not_build_an_unchanged_system_again(monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlcompile.build as build

    args = ["build", "systems/*/mlcompile.yaml", "--target", "targets/local.yaml", "--git-commit", "none", "--cache-dir", ".cache"]
    assert run(*args, "--out", "first")[0] == 0
    spec = monorepo / "systems" / "churn" / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("canary_percent: 10", "canary_percent: 25"))
    compiled: list[str] = []
    original = build.compile_system
    monkeypatch.setattr(build, "compile_system", lambda spec, *a, **k: compiled.append(spec) or original(spec, *a, **k))
    assert run(*args, "--out", "second")[0] == 0
    assert compiled == ["systems/churn/mlcompile.yaml"]
    uncached = CliRunner().invoke(main, ["build", "systems/*/mlcompile.yaml", "--target", "targets/local.yaml", "--git-commit", "none", "--out", "third"])
    assert uncached.exit_code == 0
    files = lambda root: {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}  # noqa: E731
    assert files(monorepo / "second") == files(monorepo / "third"), "a cached build is the build, byte for byte"


# ------------------------------------------------------------------ --base-dir reads only its build


@pytest.fixture
def base_build(monorepo: Path) -> Path:
    code, output = run("build", "systems/churn/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "base", "--git-commit", "none")
    assert code == 0, output
    (monorepo / "secret.txt").write_text("AWS_SECRET_ACCESS_KEY=do-not-print-me\n")
    return monorepo / "base" / "local"


def _list_in_manifest(folder: Path, path: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"].append({"path": path, "kind": "text", "sha256": "0" * 64})
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/proc/self/environ", "inside its own folder"),
        ("../../secret.txt", "inside its own folder"),
        ("notes/../../../secret.txt", "inside its own folder"),
    ],
)
def test_base_dir_refuses_a_manifest_path_outside_the_build(base_build: Path, path: str, reason: str) -> None:
    _list_in_manifest(base_build, path)
    code, output = run("diff", "systems/churn/mlcompile.yaml", "-t", "targets/local.yaml", "--base-dir", "base", "--format", "markdown")
    assert code == 2
    assert "do-not-print-me" not in output and "PATH=" not in output
    assert "base/local/manifest.json:" in output and "error: files[" in output and f"refusing to read {json.dumps(path)}: " in output
    assert reason in output


def test_base_dir_refuses_a_symbolic_link_out_of_the_build(base_build: Path) -> None:
    (base_build / "leak.txt").symlink_to(base_build.parents[1] / "secret.txt")
    _list_in_manifest(base_build, "leak.txt")
    code, output = run("diff", "systems/churn/mlcompile.yaml", "-t", "targets/local.yaml", "--base-dir", "base")
    assert code == 2
    assert "do-not-print-me" not in output
    assert 'refusing to read "leak.txt": leak.txt is a symbolic link' in output


def test_base_dir_refuses_what_is_not_a_regular_file(base_build: Path) -> None:
    os.mkfifo(base_build / "pipe")  # reading a fifo would hang; a device would never end
    _list_in_manifest(base_build, "pipe")
    code, output = run("diff", "systems/churn/mlcompile.yaml", "-t", "targets/local.yaml", "--base-dir", "base")
    assert code == 2
    assert 'refusing to read "pipe": not a regular file' in output


def test_base_dir_of_an_unchanged_build_has_no_changes(base_build: Path) -> None:
    code, output = run("diff", "systems/churn/mlcompile.yaml", "-t", "targets/local.yaml", "--base-dir", "base", "--exit-code")
    assert code == 0, output


# ------------------------------------------------------------------ the pieces


def test_lineage_hashes_and_their_prefixes_are_set_aside() -> None:
    spec = "9657fa510d4055c2428eb7963f65db6d3feed68325b029b2bc8103ab8002db50"
    content = f'{{"sha": "{spec}", "label": "{spec[:63]}", "short": "spec sha256 {spec[:12]}", "other": "0123456789abcdef"}}'.encode()
    cleaned = without_lineage(content, LineageValues(spec_sha256=spec))
    assert cleaned == b'{"sha": "<spec-sha256>", "label": "<spec-sha256>", "short": "spec sha256 <spec-sha256>", "other": "0123456789abcdef"}'


def test_a_compressed_embedded_job_is_compared_by_its_content_with_lineage_set_aside() -> None:
    import base64
    import zlib

    def command(spec: str, epochs: int) -> bytes:
        job = base64.b64encode(zlib.compress(json.dumps({"spec_sha256": spec, "epochs": epochs}).encode())).decode()
        return ('python -m mlcompile.runtime trigger-retraining --config \'{\\"job_zlib_base64\\":\\"' + job + "\\\"}'").encode()

    old, new = "a" * 64, "b" * 64
    assert without_lineage(command(old, 3), LineageValues(spec_sha256=old)) == without_lineage(command(new, 3), LineageValues(spec_sha256=new))
    assert without_lineage(command(old, 3), LineageValues(spec_sha256=old)) != without_lineage(command(new, 4), LineageValues(spec_sha256=new))


def test_content_addressed_files_are_paired_by_content() -> None:
    score = b'{\n  "step": "score",\n  "image": "a:1",\n  "replicas": %d\n}\n'
    removed = {"configs/aaaaaaaaaaaaaaaaaaaa.json": b'{"step": "train"}', "configs/bbbbbbbbbbbbbbbbbbbb.json": score % 1}
    # the same train config under a new name; the score config changed (so did its name)
    added = {"configs/cccccccccccccccccccc.json": score % 2, "configs/dddddddddddddddddddd.json": b'{"step": "train"}'}
    assert pair_renamed(removed, added) == {
        "configs/aaaaaaaaaaaaaaaaaaaa.json": "configs/dddddddddddddddddddd.json",
        "configs/bbbbbbbbbbbbbbbbbbbb.json": "configs/cccccccccccccccccccc.json",
    }


def test_data_files_compare_by_key_path_through_named_lists_and_embedded_json() -> None:
    old = {
        "Tags": [{"Key": "team", "Value": "growth"}, {"Key": "tier", "Value": "1"}],
        "Definition": json.dumps({"Steps": [{"Name": "train", "Image": "a:1"}]}),
    }
    new = {"Tags": [{"Key": "new", "Value": "x"}, {"Key": "team", "Value": "growth"}, {"Key": "tier", "Value": "2"}],
           "Definition": json.dumps({"Steps": [{"Name": "train", "Image": "a:2"}]})}  # fmt: skip
    changes = compare_files("x.json", json.dumps(old).encode(), json.dumps(new, indent=4).encode())
    assert [c.render() for c in changes or []] == [
        '$.Tags[Key=tier].Value: "1" → "2"',
        '$.Tags[Key=new]: (none) → {"Key": "new", "Value": "x"}',
        '$.Definition(json).Steps[Name=train].Image: "a:1" → "a:2"',
    ]
    assert compare_files("x.yaml", b"a: 1\nb: [1, 2]\n", b"b:\n  - 1\n  - 2\na: 1  # same data\n") == []
    assert compare_files("x.py", b"a = 1\n", b"a = 2\n") is None, "not data: compared by lines"
