"""`mlcompile deploy` against a platform that would make it wait forever, for each cloud target
(the stand-ins and fault proxy of test_deploy_faults.py, with the real SDK clients):

* a 429 asking `Retry-After: 100000` — urllib3 under kfp.Client and azure-core's RetryPolicy
  sleep whatever they are told; deploy's clients wait at most MLCOMPILE_DEPLOY_MAX_BACKOFF;
* an answer trickled one byte every half second — no read ever times out; deploy abandons a
  request whose answer is not complete within MLCOMPILE_DEPLOY_TIMEOUT, and retries it;
* a platform that trickles every answer — the deploy stops at MLCOMPILE_DEPLOY_DEADLINE with
  exit status 1 and the failure summary.

Without those limits, each of these deploys hangs (28 hours for the Retry-After)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from reliability.test_deploy_faults import deploy, moto_url, platform_of, quick_retries, reference_state  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore::FutureWarning")

HANGS = {
    "kubeflow": [("retry-after-huge", {"method": "GET", "path": r"/pipelines$"}), ("slow-body", {"method": "GET", "path": r"/versions$"})],
    "vertex": [("retry-after-huge", {"method": "GET", "path": r"/schedules$"}), ("slow-body", {"method": "GET", "path": r"/endpoints/"})],
    "sagemaker": [("retry-after-huge", {"operation": "CreateModelPackageGroup"}), ("slow-body", {"operation": "DescribePipeline", "skip": 1})],
    "azureml": [
        ("retry-after-huge", {"method": "GET", "path": r"/onlineEndpoints/churn-scorer$"}),
        ("slow-body", {"method": "GET", "path": r"/batchEndpoints/churn-prediction-batch$"}),
    ],
}
# every request of the platform answered slowly (each stand-in's API paths)
EVERYTHING = {"kubeflow": {"path": r"/apis/"}, "vertex": {"path": r"/v1/"}, "sagemaker": {"method": "POST"}, "azureml": {"path": r"/subscriptions/"}}


@pytest.mark.parametrize("target", list(HANGS))
def test_a_huge_retry_after_and_a_trickled_answer_are_ridden_out(target: str, platform_of: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    state, labels = reference_state(target, platform_of)
    monkeypatch.setenv("MLCOMPILE_DEPLOY_TIMEOUT", "2")  # the whole answer: a trickle of 0.5 s a byte needs far longer
    with platform_of(target) as platform:
        for kind, where in HANGS[target]:
            platform.proxy.inject(kind, **where)
        started = time.monotonic()
        done = deploy(platform)
        seconds = time.monotonic() - started
        assert done.code == 0, done.stderr
        assert platform.proxy.injected == {"retry-after-huge": 1, "slow-body": 1}
        assert platform.proxy.abandoned == 1, "the client hung up on the trickled answer"
        assert platform.state() == state and sorted(platform.labels()) == labels
        assert seconds < 60, f"deploy took {seconds:.0f}s"


@pytest.mark.parametrize("target", list(HANGS))
def test_a_platform_that_trickles_every_answer_stops_at_the_deadline(target: str, platform_of: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCOMPILE_DEPLOY_TIMEOUT", "600")  # so that only the deadline can end it
    monkeypatch.setenv("MLCOMPILE_DEPLOY_DEADLINE", "4")
    with platform_of(target) as platform:
        platform.proxy.inject("slow-body", times=None, **EVERYTHING[target])
        started = time.monotonic()
        failed = deploy(platform)
        seconds = time.monotonic() - started
        assert failed.code == 1, failed.stdout + failed.stderr
        assert "deploy failed: gave up after 4s (MLCOMPILE_DEPLOY_DEADLINE)" in failed.stderr
        assert "Traceback" not in failed.stderr and "not applied" in failed.stderr
        assert seconds < 40, (
            f"deploy took {seconds:.0f}s past a 4 s deadline"
        )  # the message above proves the deadline fired; this bounds what follows it (21 s seen at load 12)
