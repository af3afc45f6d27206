"""`mlcompile build` of several specs in one process (OUT/<system>/<profile>/), and the
warning when an artifact passes 80% of its platform's size limit (mlcompile.limits)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcompile import limits
from mlcompile.cli import main
from mlcompile.targets.local import LocalTarget
from mlcompile.targets.registry import load_target

FIXTURE = Path(__file__).parent / "fixtures" / "system"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """systems/{alpha,beta,gamma}/mlcompile.yaml: the fixture system under three names, and targets/local.yaml."""
    for name in ("alpha", "beta", "gamma"):
        folder = tmp_path / "systems" / name
        folder.mkdir(parents=True)
        text = (FIXTURE / "mlcompile.yaml").read_text()
        (folder / "mlcompile.yaml").write_text(text.replace("  name: churn-prediction\n", f"  name: {name}-system\n", 1))
    shutil.copytree(FIXTURE / "targets", tmp_path / "targets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def break_spec(path: Path, unknown: str) -> None:
    path.write_text(path.read_text().replace("customer_activity:plan]", f"customer_activity:{unknown}]", 1))


def test_several_specs_build_into_a_folder_per_system_and_profile(repo: Path) -> None:
    code, output = run("build", "systems/alpha/mlcompile.yaml", "systems/beta/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")
    assert code == 0, output
    assert sorted(p.name for p in (repo / "out").iterdir()) == ["alpha-system", "beta-system"]
    for name in ("alpha-system", "beta-system"):
        assert (repo / "out" / name / "local" / "manifest.json").is_file()
        assert (repo / "out" / name / "local" / "plan.json").is_file()


def test_a_single_spec_keeps_the_profile_folder_layout(repo: Path) -> None:
    code, output = run("build", "systems/alpha/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")
    assert code == 0, output
    assert sorted(p.name for p in (repo / "out").iterdir()) == ["local"]


def test_a_quoted_glob_is_expanded_sorted(repo: Path) -> None:
    code, output = run("build", "systems/*/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")
    assert code == 0, output
    assert sorted(p.name for p in (repo / "out").iterdir()) == ["alpha-system", "beta-system", "gamma-system"]
    built = [line for line in output.splitlines() if line.startswith("built ")]
    assert [line.split("out/")[1].split("/")[0] for line in built] == ["alpha-system", "beta-system", "gamma-system"]


def test_a_glob_that_matches_nothing_is_a_usage_error(repo: Path) -> None:
    code, output = run("build", "nowhere/*/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")
    assert code == 2 and "no spec matches" in output
    assert not (repo / "out").exists()


def test_all_specs_are_checked_before_anything_is_written_and_all_errors_reported(repo: Path) -> None:
    break_spec(repo / "systems/beta/mlcompile.yaml", "bogus_one")
    break_spec(repo / "systems/gamma/mlcompile.yaml", "bogus_two")
    code, output = run(
        "build", "systems/alpha/mlcompile.yaml", "systems/beta/mlcompile.yaml", "systems/gamma/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out"
    )
    assert code == 2, output
    assert "systems/beta/mlcompile.yaml" in output and "bogus_one" in output
    assert "systems/gamma/mlcompile.yaml" in output and "bogus_two" in output
    assert "2 errors" in output
    assert not (repo / "out").exists(), "nothing is written, not even the valid system"


def test_two_specs_with_one_system_name_do_not_collide(repo: Path) -> None:
    beta = repo / "systems/beta/mlcompile.yaml"
    beta.write_text(beta.read_text().replace("name: beta-system", "name: alpha-system", 1))
    code, output = run("build", "systems/alpha/mlcompile.yaml", "systems/beta/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")
    assert code == 2 and "both define system 'alpha-system'" in output
    assert not (repo / "out").exists()


def test_the_same_spec_twice_is_a_usage_error(repo: Path) -> None:
    code, output = run("build", "systems/alpha/mlcompile.yaml", "systems/*/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out")
    assert code == 2 and "more than once" in output


def test_each_platform_declares_the_limits_of_its_kinds() -> None:
    def limit(platform: str, kind: str) -> limits.Limit | None:
        return limits.limit_of(kind, load_target(platform).size_limits)

    assert limit("sagemaker", "sagemaker.pipeline_definition") == limits.Limit(
        "sagemaker.pipeline_definition", 1_048_576, "characters", "SageMaker pipeline definition (CreatePipeline)"
    )
    for platform in ("kubeflow", "vertex"):
        assert limit(platform, "kfp.pipeline_spec").limit == 32 * 1024 * 1024  # type: ignore[union-attr]
    for kind in ("kserve.inference_service", "kubeflow.pytorch_job", "katib.experiment", "kubernetes.cron_job"):
        assert limit("kubeflow", kind).limit == 1024 * 1024  # type: ignore[union-attr]
    assert limit("local", "mlcompile.plan") is None
    # characters, not bytes: 300k three-byte characters are 900k bytes but 300k characters
    sagemaker = load_target("sagemaker").size_limits
    assert limits.over_warning("sagemaker.pipeline_definition", ("€" * 300_000).encode(), sagemaker) is None
    assert limits.over_warning("sagemaker.pipeline_definition", b"x" * 900_000, sagemaker) is not None


def test_an_artifact_past_80_percent_of_its_limit_warns_at_the_metadata_name(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run("build", "systems/alpha/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "first")
    assert code == 0 and "limit" not in output, output  # the real table has no limit for the local plan
    plan_size = len((repo / "first/local/plan.json").read_bytes())

    # a limit the plan stays under 80% of: no warning
    monkeypatch.setattr(LocalTarget, "size_limits", (limits.Limit("mlcompile.*", int(plan_size / 0.79), "bytes", "test object"),))
    code, output = run("build", "systems/alpha/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "second")
    assert code == 0 and "limit" not in output, output

    # past 80%: a warning located at metadata.name (line 5 of the fixture), and the build still succeeds
    monkeypatch.setattr(LocalTarget, "size_limits", (limits.Limit("mlcompile.*", int(plan_size / 0.81), "bytes", "test object"),))
    code, output = run("build", "systems/alpha/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "third")
    assert code == 0, output
    warning = next(line for line in output.splitlines() if "limit" in line)
    assert warning.startswith("systems/alpha/mlcompile.yaml:5:") and ": warning: metadata.name: local/plan.json is " in warning, warning
    assert "81% of the" in warning and "(mlcompile.plan)" in warning
    assert (repo / "third/local/plan.json").is_file()
