"""`mlcompile build`: per-profile folders with a manifest, deterministic bytes, and atomic
replacement — a failed build never leaves a half-written or mixed output behind."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcompile import testing
from mlcompile.cli import main
from mlcompile.targets.base import OutputFile

FIXTURE = Path(__file__).parent / "fixtures" / "system"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "system")
    monkeypatch.chdir(tmp_path / "system")
    return tmp_path / "system"


def run(*args: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def stdout_of(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout


def test_build_writes_a_folder_per_profile_with_a_manifest_of_sha256s(workspace: Path) -> None:
    code, output = run("build", "mlcompile.yaml", "--target", "targets/local.yaml", "--out", "out")
    assert code == 0, output
    manifest = json.loads((workspace / "out/local/manifest.json").read_text())
    assert manifest["profile"] == "local" and manifest["platform"] == "local"
    assert manifest["spec_sha256"] == hashlib.sha256((workspace / "mlcompile.yaml").read_bytes()).hexdigest()
    digest = lambda path: hashlib.sha256((workspace / "out/local" / path).read_bytes()).hexdigest()  # noqa: E731
    module = next(f["path"] for f in manifest["files"] if f["kind"] == "feast.repo")  # named after the system
    assert manifest["files"] == [
        {"path": "cost.json", "kind": "mlcompile.cost_estimate", "sha256": digest("cost.json")},
        {"path": module, "kind": "feast.repo", "sha256": digest(module)},
        {"path": "feature_repo/feature_store.yaml", "kind": "feast.feature_store_config", "sha256": digest("feature_repo/feature_store.yaml")},
        {"path": "plan.json", "kind": "mlcompile.plan", "sha256": digest("plan.json")},
    ]  # sorted by path
    testing.assert_manifest_complete(workspace / "out/local", spec="mlcompile.yaml")
    assert sorted(p.name for p in (workspace / "out").iterdir()) == ["local"], "no staging folder is left behind"


def test_build_output_is_identical_across_runs_directories_and_hash_seeds(workspace: Path, tmp_path: Path) -> None:
    # the same plan twice, then fresh processes under other PYTHONHASHSEEDs from another folder
    testing.assert_deterministic("mlcompile.yaml", "targets/local.yaml", tmp_path, hash_seeds=("12345",))


def test_a_failed_build_leaves_the_previous_output_untouched(workspace: Path) -> None:
    assert run("build", "mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")[0] == 0
    before = testing.read_tree(workspace / "out")
    spec = workspace / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("source: transactions\n      ttl", "source: transaction\n      ttl"))
    code, output = run("build", "mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")
    assert code == 2 and "unknown source 'transaction'" in output
    assert testing.read_tree(workspace / "out") == before


def test_nothing_is_written_when_any_profile_fails(workspace: Path) -> None:
    # gcp-prod asks for an accelerator Vertex AI does not offer; local alone would succeed
    spec = workspace / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("type: nvidia-a100-40gb, count: 2", "type: nvidia-a10g, count: 1"))
    code, output = run("build", "mlcompile.yaml", "-t", "targets/local.yaml", "-t", "targets/gcp-prod.yaml", "-o", "out")
    assert code == 2 and "vertex does not offer nvidia-a10g" in output
    assert not (workspace / "out" / "local").exists()


def test_a_target_that_raises_is_named_as_the_culprit_exit_3(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlcompile import build
    from mlcompile.targets.local import LocalTarget

    class Broken(LocalTarget):
        def render(self, plan):  # type: ignore[no-untyped-def]
            raise KeyError("machine")

    monkeypatch.setattr(build, "load_target", lambda name: Broken())
    code, output = run("build", "mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")
    assert code == 3
    assert "target 'local' (mlcompile.targets.local:LocalTarget from mlcompile) failed in render(): KeyError: 'machine'" in output
    assert "Traceback" not in output


def test_a_rebuild_replaces_the_profile_folder_whole(workspace: Path) -> None:
    assert run("build", "mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")[0] == 0
    stale = workspace / "out/local/stale.txt"
    stale.write_text("from an older build")
    assert run("build", "mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")[0] == 0
    assert not stale.exists()


def test_build_needs_a_target_when_no_profiles_are_beside_the_spec(workspace: Path) -> None:
    shutil.rmtree(workspace / "targets")
    code, output = run("build", "mlcompile.yaml", "-o", "out")
    assert code == 2 and "build needs a target profile: pass --target PROFILE, or keep the profiles in targets/" in output


@pytest.mark.parametrize("path", ["../escape.json", "/etc/passwd", "a/../../b", "", "dir/"])
def test_targets_cannot_write_outside_their_folder(path: str) -> None:
    with pytest.raises(ValueError, match="unsafe output path"):
        OutputFile(path, "x", b"")


def test_graph_renders_mermaid_and_dot_of_every_pipeline(workspace: Path) -> None:
    code, mermaid = stdout_of("graph", "mlcompile.yaml")
    assert code == 0
    assert "flowchart TD" in mermaid
    assert "churn_prediction_training__gate -- pass --> churn_prediction_training__register" in mermaid
    assert 'schedule_churn_prediction_monitoring(["schedule 0 * * * * UTC"]) -.-> churn_prediction_monitoring' in mermaid
    # manual approval: the endpoint is served from the registry once a person approves
    assert "churn_prediction_training__register -. on approval .-> endpoint_churn" in mermaid
    code, dot = stdout_of("graph", "mlcompile.yaml", "--format", "dot")
    assert code == 0 and dot.startswith('digraph "churn-prediction" {')
    assert '"churn_prediction_training__gate" -> "churn_prediction_training__register" [label="pass"];' in dot


def test_graph_markdown_is_the_mermaid_flowchart_in_a_fence_ready_to_paste(workspace: Path) -> None:
    _, mermaid = stdout_of("graph", "mlcompile.yaml")
    code, markdown = stdout_of("graph", "mlcompile.yaml", "--format", "markdown")
    assert code == 0
    assert markdown == f"```mermaid\n{mermaid}```\n"


def test_targets_lists_the_builtin_local_target_with_its_package() -> None:
    code, output = run("targets")
    assert code == 0
    line = next(line for line in output.splitlines() if line.startswith("local "))
    assert "mlcompile" in line and "mlcompile.targets.local:LocalTarget" in line


def test_init_scaffolds_a_system_that_validates_and_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = run("init", "fresh")
    assert code == 0, output
    assert (tmp_path / "fresh/mlcompile.yaml").read_text().startswith("# yaml-language-server: $schema=https://mlcompile.dev/schemas/mlcompile-v1.schema.json")
    assert run("validate", "fresh/mlcompile.yaml")[0] == 0
    assert run("build", "fresh/mlcompile.yaml", "-t", "fresh/targets/local.yaml", "-o", "fresh/out")[0] == 0


def test_init_writes_no_schema_copy_into_the_run_workdir_and_ignores_it_in_git(tmp_path: Path) -> None:
    assert run("init", str(tmp_path))[0] == 0
    assert not (tmp_path / ".mlcompile").exists()  # the workdir is scratch space, made by the first run
    ignored = (tmp_path / ".gitignore").read_text().splitlines()
    assert ".mlcompile/" in ignored and "build/" in ignored


def test_init_accepts_a_folder_holding_other_files_and_keeps_them(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# churn\n")
    (tmp_path / ".gitignore").write_text("*.pyc")
    code, output = run("init", str(tmp_path))
    assert code == 0, output
    assert (tmp_path / "README.md").read_text() == "# churn\n"
    assert (tmp_path / ".gitignore").read_text().splitlines()[0] == "*.pyc"  # appended to, not replaced
    assert {".mlcompile/", "build/"} <= set((tmp_path / ".gitignore").read_text().splitlines())
    assert (tmp_path / "mlcompile.yaml").exists()


def test_init_refuses_to_overwrite_a_file_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "mlcompile.yaml").write_text("mine")
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "local.yaml").write_text("mine too")
    code, output = run("init", str(tmp_path))
    assert code == 2 and "already has mlcompile.yaml, targets/local.yaml" in output
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["local.yaml", "mlcompile.yaml", "targets"]
    assert (tmp_path / "mlcompile.yaml").read_text() == "mine"
