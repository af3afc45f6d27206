"""Deploy under faults: transient failures (429/5xx, dropped connections) are retried with
capped backoff; a failure that persists stops the deploy with exit status 1 and a summary
of exactly what was and was not applied — never half a change in silence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlcompile.runtime.retries import is_transient, with_retries

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "stand_ins"))


class Status(Exception):
    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


def test_transient_failures_are_retried_with_capped_exponential_backoff() -> None:
    outcomes: list[BaseException | str] = [Status(503), Status(429), ConnectionError("reset"), "done"]
    slept: list[float] = []

    def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert with_retries(call, attempts=5, first_delay=1.0, max_delay=3.0, sleep=slept.append) == "done"
    assert len(slept) == 3
    assert 0.5 <= slept[0] <= 1.0 and 1.0 <= slept[1] <= 2.0 and 1.5 <= slept[2] <= 3.0  # doubling, capped, jittered


def test_a_refusal_is_not_retried_and_attempts_are_bounded() -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise Status(400)

    with pytest.raises(Status):
        with_retries(refused, sleep=lambda _: None)
    assert len(calls) == 1

    def always_busy() -> None:
        calls.append(1)
        raise Status(503)

    calls.clear()
    with pytest.raises(Status):
        with_retries(always_busy, attempts=3, sleep=lambda _: None)
    assert len(calls) == 3


@pytest.mark.parametrize(("exc", "transient"), [(Status(500), True), (Status(504), True), (Status(404), False), (TimeoutError(), True), (ValueError(), False)])
def test_what_counts_as_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


kfp = pytest.importorskip("kfp")
from kfp_api import KfpStandIn  # noqa: E402
from test_target_kubeflow_deploy import deploy, profiles_pointing_at  # noqa: E402


def test_kubeflow_deploy_rides_out_transient_server_errors(tmp_path: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        api.fail_next = [503, 429, 502]
        result = deploy(profile)
        assert result.returncode == 0, result.stderr
        assert "create pipeline churn-prediction-training" in result.stdout
        assert not api.fail_next
        built = json.loads((Path(__file__).parent / "golden/churn/kfp-gke/manifest.json").read_text())["files"]
        assert len(api.pipelines) == sum(f["kind"] == "kfp.pipeline_spec" for f in built)  # each pipeline once, retries or not


def test_kubeflow_deploy_that_keeps_failing_says_what_was_applied(tmp_path: Path) -> None:
    with KfpStandIn() as api:
        profile = profiles_pointing_at(api.host, tmp_path)
        api.fail_always = [("POST", "/apis/v2beta1/recurringruns", 500)]
        result = deploy(profile)
        assert result.returncode == 1
        assert "deploy failed: Kubeflow Pipelines at" in result.stderr
        applied = result.stderr.split("applied before the failure:", 1)[1].split("not applied:", 1)[0]
        assert "create pipeline churn-prediction-training" in applied
        assert "recurring run" not in applied
        not_applied = result.stderr.split("not applied:", 1)[1]
        assert "  recurring run churn-prediction-retraining\n" in not_applied
        assert "Traceback" not in result.stderr
        # the pipelines stayed: a second deploy, once the API accepts, reports them unchanged
        api.fail_always = []
        again = deploy(profile)
        assert again.returncode == 0, again.stderr
        assert "unchanged pipeline churn-prediction-training" in again.stdout
        assert "create recurring run churn-prediction-retraining" in again.stdout
