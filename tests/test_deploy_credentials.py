"""`mlcompile deploy` on a machine with no cloud credentials at all: for every cloud profile,
one line naming the platform and how to log in, exit status 2 — never a deploy failure,
never an internal error, never the SDK's own dump of every credential source it tried."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcompile.cli import main

ROOT = Path(__file__).resolve().parents[1]

LOGIN = {
    "aws-prod": ("SageMaker (AWS): no credentials found", "aws sso login"),
    "azure-prod": ("Azure ML: no valid credentials found", "az login"),
    "gcp-prod": ("Vertex AI: no Application Default Credentials found", "gcloud auth application-default login"),
    "kfp-gke": ("Kubeflow Pipelines at https://kfp.ml.acme.internal: no credentials found", "MLCOMPILE_KFP_TOKEN"),
}


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This environment without anything that could hold or point at credentials."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "AZURE_", "GOOGLE_", "CLOUDSDK_", "KF_PIPELINES_", "MLCOMPILE_", "KUBECONFIG")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("profile", sorted(LOGIN))
@pytest.mark.parametrize("mode", ["--dry-run", "--yes"])
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")
def test_no_credentials_is_one_line_and_exit_2_on_every_cloud_profile(no_credentials: None, profile: str, mode: str) -> None:
    pytest.importorskip({"aws-prod": "sagemaker", "azure-prod": "azure.ai.ml", "gcp-prod": "google.cloud.aiplatform", "kfp-gke": "kfp"}[profile])
    done = CliRunner().invoke(main, ["deploy", "examples/churn/mlcompile.yaml", "--target", f"targets/{profile}.yaml", mode, "--git-commit", "none"])
    problem, login = LOGIN[profile]
    assert done.exit_code == 2, done.output
    # the spec's located warnings (e.g. SageMaker's whole-instance canary) come first; the error is one line
    lines = done.stderr.strip().splitlines()
    (line,) = [text for text in lines if text.startswith("error:")]
    assert line == lines[-1] and line.startswith(f"error: {problem}") and login in line, line
    assert all(text.startswith(("error:", "  hint:")) or ": warning: " in text for text in lines), lines
    assert done.stdout == "", "nothing planned or applied"


def test_credentials_the_api_refuses_are_one_line_and_exit_2(tmp_path: Path) -> None:
    """An expired or revoked token: the Kubeflow Pipelines API answers 401."""
    pytest.importorskip("kfp")
    sys.path.insert(0, str(Path(__file__).parent))
    sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))
    from kfp_api import KfpStandIn
    from test_target_kubeflow_deploy import profiles_pointing_at

    with KfpStandIn() as api:
        api.fail_always = [("GET", "/apis/v2beta1/pipelines", 401)]
        profile = profiles_pointing_at(api.host, tmp_path)
        done = CliRunner().invoke(main, ["deploy", "examples/churn/mlcompile.yaml", "--target", str(profile), "--dry-run", "--git-commit", "none"])
    assert done.exit_code == 2, done.output
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: Kubeflow Pipelines at {api.host}: the API refused the credentials (HTTP 401") and "MLCOMPILE_KFP_TOKEN" in line, line
